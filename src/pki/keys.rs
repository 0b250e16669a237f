//! Hosted issuer keys (DESIGN.md §4 "Hosted"): a private key encrypted at rest under the
//! exchange's 32-byte master key, decrypted only for one signing.
//!
//! Blob layout (version 1): `"BHK" 0x01 | nonce (12) | AES-256-GCM ciphertext of the
//! PKCS#8 DER | tag (16)`. The 4-byte header and a caller-chosen context (e.g. the
//! issuer's id) are authenticated as associated data, so a blob cannot be moved to
//! another issuer's record unnoticed.

use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use openssl::x509::X509;
use thiserror::Error;

const MAGIC_V1: [u8; 4] = *b"BHK\x01";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Why a hosted key operation failed. Messages never include key material.
#[derive(Debug, Error)]
pub enum HostedKeyError {
    /// The master key is not 32 bytes.
    #[error("the master key must be 32 bytes")]
    BadMasterKey,
    /// Not a blob of a version we know.
    #[error("not an encrypted key blob of a known version")]
    UnknownFormat,
    /// Wrong master key, wrong context, or tampered blob.
    #[error("the key blob does not decrypt (wrong master key or context, or tampered)")]
    Decrypt,
    /// The PEM or PKCS#12 could not be read (or the password is wrong).
    #[error("cannot import the key: {0}")]
    Import(String),
    /// The certificate's public key is not the private key's.
    #[error("the certificate does not belong to the private key")]
    KeyMismatch,
    /// OpenSSL failure.
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// The 32-byte master key. Its `Debug` never prints the bytes; they are zeroed on drop.
pub struct MasterKey([u8; 32]);

impl MasterKey {
    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, HostedKeyError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| HostedKeyError::BadMasterKey)?;
        Ok(MasterKey(array))
    }

    /// A fresh random master key (demo and tests).
    pub fn generate() -> Result<Self, HostedKeyError> {
        let mut bytes = [0u8; 32];
        openssl::rand::rand_bytes(&mut bytes)?;
        Ok(MasterKey(bytes))
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

fn aad(context: &str) -> Vec<u8> {
    let mut aad = MAGIC_V1.to_vec();
    aad.extend_from_slice(context.as_bytes());
    aad
}

/// Seals `plain` under the master key (AES-256-GCM, random nonce, versioned blob).
/// `context` binds the blob to its owner and use; it must be given again to open it, so a
/// blob copied to another row does not open there.
pub fn seal(master: &MasterKey, plain: &[u8], context: &str) -> Result<Vec<u8>, HostedKeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    openssl::rand::rand_bytes(&mut nonce)?;
    let mut tag = [0u8; TAG_LEN];
    let ciphertext = encrypt_aead(
        Cipher::aes_256_gcm(),
        &master.0,
        Some(&nonce),
        &aad(context),
        plain,
        &mut tag,
    )?;
    let mut blob = Vec::with_capacity(4 + NONCE_LEN + ciphertext.len() + TAG_LEN);
    blob.extend_from_slice(&MAGIC_V1);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ciphertext);
    blob.extend_from_slice(&tag);
    Ok(blob)
}

/// Opens a blob made by [`seal`] with the same master key and context.
pub fn open(master: &MasterKey, blob: &[u8], context: &str) -> Result<Vec<u8>, HostedKeyError> {
    if blob.len() < 4 + NONCE_LEN + TAG_LEN || blob[..4] != MAGIC_V1 {
        return Err(HostedKeyError::UnknownFormat);
    }
    let (nonce, rest) = blob[4..].split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    decrypt_aead(
        Cipher::aes_256_gcm(),
        &master.0,
        Some(nonce),
        &aad(context),
        ciphertext,
        tag,
    )
    .map_err(|_| HostedKeyError::Decrypt)
}

/// Encrypts `key` for storage. `context` names the owner (e.g. the issuer id) and must be
/// given again to decrypt.
pub fn encrypt_private_key(
    master: &MasterKey,
    key: &PKeyRef<Private>,
    context: &str,
) -> Result<Vec<u8>, HostedKeyError> {
    let mut plain = key.private_key_to_pkcs8()?;
    let sealed = seal(master, &plain, context);
    plain.fill(0);
    sealed
}

/// Decrypts a blob made by [`encrypt_private_key`] with the same master key and context.
pub fn decrypt_private_key(
    master: &MasterKey,
    blob: &[u8],
    context: &str,
) -> Result<PKey<Private>, HostedKeyError> {
    let mut plain = open(master, blob, context)?;
    let key = PKey::private_key_from_pkcs8(&plain).map_err(|_| HostedKeyError::Decrypt);
    plain.fill(0);
    key
}

/// An imported key with the certificates that came with it.
pub struct ImportedKey {
    /// The private key.
    pub key: PKey<Private>,
    /// The key's certificate, if the input carried one.
    pub certificate: Option<X509>,
    /// Further (CA) certificates from the input.
    pub chain: Vec<X509>,
}

impl std::fmt::Debug for ImportedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportedKey")
            .field("key", &"..")
            .field(
                "certificate",
                &self
                    .certificate
                    .as_ref()
                    .map(|c| c.subject_name().entries().count()),
            )
            .field("chain", &self.chain.len())
            .finish()
    }
}

/// Imports a PEM private key (PKCS#8 or traditional, encrypted when `passphrase` is
/// given), plus any certificates in the same PEM: the one matching the key becomes
/// `certificate`, the rest `chain`.
pub fn import_pem(pem: &[u8], passphrase: Option<&[u8]>) -> Result<ImportedKey, HostedKeyError> {
    let key = match passphrase {
        Some(p) => PKey::private_key_from_pem_passphrase(pem, p),
        None => PKey::private_key_from_pem(pem),
    }
    .map_err(|_| HostedKeyError::Import("no readable private key (or wrong passphrase)".into()))?;
    let certs = if String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
        X509::stack_from_pem(pem).map_err(|e| HostedKeyError::Import(e.to_string()))?
    } else {
        Vec::new()
    };
    split_certificates(key, certs)
}

/// Imports a PKCS#12 (.p12/.pfx) file with its password.
pub fn import_pkcs12(der: &[u8], password: &str) -> Result<ImportedKey, HostedKeyError> {
    let parsed = Pkcs12::from_der(der)
        .and_then(|p| p.parse2(password))
        .map_err(|_| HostedKeyError::Import("not a PKCS#12 file, or wrong password".into()))?;
    let key = parsed
        .pkey
        .ok_or_else(|| HostedKeyError::Import("the PKCS#12 holds no private key".into()))?;
    let mut certs: Vec<X509> = parsed.cert.into_iter().collect();
    if let Some(ca) = parsed.ca {
        certs.extend(ca);
    }
    split_certificates(key, certs)
}

fn split_certificates(key: PKey<Private>, certs: Vec<X509>) -> Result<ImportedKey, HostedKeyError> {
    let mut certificate = None;
    let mut chain = Vec::new();
    for cert in certs {
        let mine = cert
            .public_key()
            .map(|k| k.public_eq(&key))
            .unwrap_or(false);
        if mine && certificate.is_none() {
            certificate = Some(cert);
        } else {
            chain.push(cert);
        }
    }
    if certificate.is_none() && !chain.is_empty() {
        return Err(HostedKeyError::KeyMismatch);
    }
    Ok(ImportedKey {
        key,
        certificate,
        chain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::demo::{DemoCa, IssuerSpec, KeyType};

    #[test]
    fn round_trip_and_tamper() {
        let master = MasterKey::generate().expect("master");
        let key = crate::pki::demo::generate_key(KeyType::EcP256).expect("key");
        let blob = encrypt_private_key(&master, &key, "issuer-1").expect("encrypt");
        let back = decrypt_private_key(&master, &blob, "issuer-1").expect("decrypt");
        assert!(back.public_eq(&key));

        assert!(matches!(
            decrypt_private_key(&master, &blob, "issuer-2"),
            Err(HostedKeyError::Decrypt)
        ));
        let other = MasterKey::generate().expect("master");
        assert!(matches!(
            decrypt_private_key(&other, &blob, "issuer-1"),
            Err(HostedKeyError::Decrypt)
        ));
        let mut tampered = blob.clone();
        let last = tampered.len() - 20;
        tampered[last] ^= 1;
        assert!(matches!(
            decrypt_private_key(&master, &tampered, "issuer-1"),
            Err(HostedKeyError::Decrypt)
        ));
        assert!(matches!(
            decrypt_private_key(&master, b"BHK", "issuer-1"),
            Err(HostedKeyError::UnknownFormat)
        ));
        assert_eq!(format!("{master:?}"), "MasterKey(..)");
        assert!(MasterKey::from_bytes(&[0u8; 31]).is_err());
    }

    #[test]
    fn imports_pem_and_pkcs12() {
        let ca = DemoCa::new("Import Test CA", KeyType::EcP256).expect("ca");
        let issued = ca
            .issue(&IssuerSpec::new("示例银行", "91110000100000000R"))
            .expect("issue");

        // Encrypted PKCS#8 PEM with the certificate and CA appended.
        let mut pem = issued
            .key
            .private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"pw")
            .expect("pem");
        pem.extend(issued.cert.to_pem().expect("pem"));
        pem.extend(ca.cert.to_pem().expect("pem"));
        let imported = import_pem(&pem, Some(b"pw")).expect("import");
        assert!(imported.key.public_eq(&issued.key));
        assert_eq!(
            imported.certificate.as_ref().map(|c| c.to_der().ok()),
            Some(issued.cert.to_der().ok())
        );
        assert_eq!(imported.chain.len(), 1);
        assert!(import_pem(&pem, Some(b"wrong")).is_err());

        let mut ca_stack = openssl::stack::Stack::new().expect("stack");
        ca_stack.push(ca.cert.clone()).expect("push");
        let p12 = Pkcs12::builder()
            .name("issuer")
            .pkey(&issued.key)
            .cert(&issued.cert)
            .ca(ca_stack)
            .build2("secret")
            .expect("p12")
            .to_der()
            .expect("der");
        let imported = import_pkcs12(&p12, "secret").expect("import");
        assert!(imported.key.public_eq(&issued.key));
        assert!(imported.certificate.is_some());
        assert!(import_pkcs12(&p12, "nope").is_err());
    }
}
