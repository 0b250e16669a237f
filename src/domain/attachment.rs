//! Attachments (附件): the documents an application carries and the evidence a claim
//! carries. Pure rules: which kinds go with which parent, what a file is by its first
//! bytes (never by what the client says), how an uploaded file name is made safe to
//! store and to send back, and how many files a parent holds.

use unicode_normalization::UnicodeNormalization;

use super::string_enum::string_enum;

/// The most files one application or one claim holds.
pub const PER_PARENT: i32 = 20;

/// The longest stored file name, in characters (the extension is kept when a longer
/// name is cut).
pub const FILE_NAME_MAX_CHARS: usize = 120;

string_enum! {
    /// What an attachment belongs to.
    pub enum ParentKind ("attachment parent") {
        /// A guarantee application (保函申请): the bidder's documents.
        Application => "application",
        /// A claim (索赔): the beneficiary's evidence.
        Claim => "claim",
    }
}

string_enum! {
    /// What a file is to its parent.
    pub enum AttachmentKind ("attachment kind") {
        /// The bidder's business licence (营业执照).
        BusinessLicence => "business_licence",
        /// A qualification certificate (资质证书).
        QualificationCertificate => "qualification_certificate",
        /// The tender file, or the part of the bid the issuer asks for (投标文件).
        TenderFile => "tender_file",
        /// Evidence of the breach a claim rests on (索赔证据).
        ClaimEvidence => "claim_evidence",
        /// Anything else the parent needs (其他).
        Other => "other",
    }
}

impl AttachmentKind {
    /// The kinds a parent takes: an application its documents, a claim its evidence.
    pub fn fits(self, parent: ParentKind) -> bool {
        match parent {
            ParentKind::Application => !matches!(self, AttachmentKind::ClaimEvidence),
            ParentKind::Claim => {
                matches!(self, AttachmentKind::ClaimEvidence | AttachmentKind::Other)
            }
        }
    }

    /// The kinds `parent` takes, as text (for error messages and forms).
    pub fn for_parent(parent: ParentKind) -> Vec<AttachmentKind> {
        AttachmentKind::ALL
            .iter()
            .copied()
            .filter(|k| k.fits(parent))
            .collect()
    }
}

string_enum! {
    /// The file types taken, as found from the content.
    pub enum FileType ("file type") {
        Pdf => "application/pdf",
        Png => "image/png",
        Jpeg => "image/jpeg",
        /// OFD (GB/T 33190), China's fixed-layout format for e-licences and e-invoices:
        /// a ZIP archive whose root holds `OFD.xml`.
        Ofd => "application/ofd",
    }
}

impl FileType {
    /// The media type the file is stored and served as.
    pub fn media_type(self) -> &'static str {
        self.as_str()
    }

    /// The usual extension, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            FileType::Pdf => ".pdf",
            FileType::Png => ".png",
            FileType::Jpeg => ".jpg",
            FileType::Ofd => ".ofd",
        }
    }
}

/// How many of a file's first bytes [`sniff`] reads.
pub const HEAD_BYTES: usize = 16;
/// How many of a file's last bytes [`sniff`] reads (a ZIP's central directory is at
/// its end).
pub const TAIL_BYTES: usize = 64 * 1024;

/// What a file is, from its first bytes (`head`, at least [`HEAD_BYTES`] when the file
/// is that long) and its last (`tail`, up to [`TAIL_BYTES`]): PDF (`%PDF-`), PNG (its
/// eight-byte signature), JPEG (`FF D8 FF`), or OFD (a ZIP archive whose central
/// directory, within the tail, names `OFD.xml` at its root). Anything else is `None`.
pub fn sniff(head: &[u8], tail: &[u8]) -> Option<FileType> {
    if head.starts_with(b"%PDF-") {
        Some(FileType::Pdf)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(FileType::Png)
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(FileType::Jpeg)
    } else if head.starts_with(b"PK\x03\x04") && zip_names_ofd_root(tail) {
        Some(FileType::Ofd)
    } else {
        None
    }
}

/// Whether a ZIP's central directory entries found in `tail` name `OFD.xml` at the
/// archive's root (a central directory header: `PK\x01\x02`, the name's length at
/// offset 28, the name at 46).
fn zip_names_ofd_root(tail: &[u8]) -> bool {
    let mut at = 0;
    while let Some(found) = find(&tail[at..], b"PK\x01\x02") {
        let header = at + found;
        let name_len = tail
            .get(header + 28..header + 30)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])));
        if let Some(name) = name_len.and_then(|n| tail.get(header + 46..header + 46 + n)) {
            if name.eq_ignore_ascii_case(b"OFD.xml") {
                return true;
            }
        }
        at = header + 4;
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A file name as the client sent it, made safe to store, show and send back: only its
/// last path component (either slash), NFC, without control, bidirectional or invisible
/// characters, without leading dots or surrounding spaces, at most
/// [`FILE_NAME_MAX_CHARS`] characters (the extension kept). A name with nothing left
/// becomes `attachment` with the file type's extension.
pub fn file_name(raw: &str, file_type: FileType) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = last
        .nfc()
        .filter(|&c| !super::text::refused_anywhere(c))
        .collect();
    let kept = kept.trim().trim_start_matches('.').trim().to_owned();
    if kept.is_empty() {
        return format!("attachment{}", file_type.extension());
    }
    let count = kept.chars().count();
    if count <= FILE_NAME_MAX_CHARS {
        return kept;
    }
    // Cut the stem, keep a short extension.
    let (stem, extension) = match kept.rfind('.') {
        Some(dot) if kept[dot..].chars().count() <= 10 => (&kept[..dot], &kept[dot..]),
        _ => (kept.as_str(), ""),
    };
    let room = FILE_NAME_MAX_CHARS - extension.chars().count();
    let stem: String = stem.chars().take(room).collect();
    format!("{}{extension}", stem.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_known_by_their_first_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n%\xe2\xe3", b""), Some(FileType::Pdf));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", b""),
            Some(FileType::Png)
        );
        assert_eq!(
            sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10], b""),
            Some(FileType::Jpeg)
        );
        assert_eq!(sniff(b"GIF89a", b""), None);
        assert_eq!(sniff(b"<html><script>", b""), None);
        assert_eq!(sniff(b"", b""), None);
        // A PDF with another name is a PDF; an executable named .pdf is nothing.
        assert_eq!(sniff(b"MZ\x90\0", b""), None);
        assert_eq!(sniff(b" %PDF-1.7", b""), None);
    }

    /// A central directory entry for `name`.
    fn central_entry(name: &str) -> Vec<u8> {
        let mut entry = b"PK\x01\x02".to_vec();
        entry.extend([0u8; 24]);
        entry.extend((name.len() as u16).to_le_bytes());
        entry.extend([0u8; 16]);
        entry.extend(name.as_bytes());
        entry
    }

    #[test]
    fn an_ofd_is_a_zip_naming_ofd_xml_at_its_root() {
        let zip = b"PK\x03\x04\x14\0\0\0";
        let mut tail = central_entry("Doc_0/Document.xml");
        tail.extend(central_entry("OFD.xml"));
        assert_eq!(sniff(zip, &tail), Some(FileType::Ofd));
        // Another ZIP (an .docx, a .jar) is not taken.
        assert_eq!(sniff(zip, &central_entry("word/document.xml")), None);
        assert_eq!(sniff(zip, &central_entry("x/OFD.xml")), None);
        // A header cut off at the end of the tail reads nothing past it.
        let cut = &central_entry("OFD.xml")[..40];
        assert_eq!(sniff(zip, cut), None);
    }

    #[test]
    fn file_names_lose_paths_controls_and_length() {
        let pdf = FileType::Pdf;
        assert_eq!(file_name("营业执照.pdf", pdf), "营业执照.pdf");
        assert_eq!(file_name("C:\\Users\\a\\资质证书.pdf", pdf), "资质证书.pdf");
        assert_eq!(file_name("../../etc/passwd", pdf), "passwd");
        assert_eq!(file_name("a\u{0}b\r\n.pdf", pdf), "ab.pdf");
        assert_eq!(file_name("gpj\u{202E}fdp.exe", pdf), "gpjfdp.exe");
        assert_eq!(file_name("  ..hidden.pdf ", pdf), "hidden.pdf");
        assert_eq!(file_name("", FileType::Png), "attachment.png");
        assert_eq!(file_name("/", pdf), "attachment.pdf");
        assert_eq!(file_name("\u{200B}", FileType::Jpeg), "attachment.jpg");
        // NFC: the same name typed two ways is stored one way.
        assert_eq!(file_name("e\u{301}.pdf", pdf), "\u{e9}.pdf");
        let long = format!("{}.pdf", "投".repeat(300));
        let cut = file_name(&long, pdf);
        assert_eq!(cut.chars().count(), FILE_NAME_MAX_CHARS);
        assert!(cut.ends_with("投.pdf"), "{cut}");
        let no_extension = "x".repeat(500);
        assert_eq!(
            file_name(&no_extension, pdf).chars().count(),
            FILE_NAME_MAX_CHARS
        );
    }

    #[test]
    fn each_parent_takes_its_own_kinds() {
        use AttachmentKind::*;
        assert_eq!(
            AttachmentKind::for_parent(ParentKind::Application),
            vec![BusinessLicence, QualificationCertificate, TenderFile, Other]
        );
        assert_eq!(
            AttachmentKind::for_parent(ParentKind::Claim),
            vec![ClaimEvidence, Other]
        );
    }
}
