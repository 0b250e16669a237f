//! People-facing text: the names and free text the exchange takes from its users and
//! prints again (in signed documents, letters, mails and pages).
//!
//! One rule set for all of it. Text is trimmed and normalized to Unicode NFC, so the
//! same name typed on two systems is stored the same way; its length is counted in
//! characters after that. Refused, with the character and its position:
//! - control characters (C0, DEL, C1): a NUL or an escape sequence has no place in a
//!   name, and PostgreSQL cannot even store a NUL; tabs and line breaks are allowed only
//!   in multi-line text (a statement of breach), where CR LF is kept as LF;
//! - bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C): an
//!   override makes a name print in another order than it is stored (`U+202E` turns
//!   "gpj.exe" around);
//! - invisible format characters (zero-width space and joiners, word joiner, byte-order
//!   mark, soft hyphen, Hangul fillers, tags, ...): two names that look the same must be
//!   the same name;
//! - line and paragraph separators (U+2028/9), noncharacters;
//! - a combining mark or variation selector with no character before it to attach to,
//!   and more than [`MAX_MARKS_PER_CHARACTER`] marks on one character ("Zalgo" text
//!   that spills over the lines of a printed letter).
//!
//! Text with nothing visible in it (only spaces, blank patterns and the like) is
//! refused as empty.
//!
//! Usernames are stricter: see [`username`].

use thiserror::Error;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The most combining marks one character may carry (Tibetan stacks and Vietnamese
/// tone marks use far fewer).
pub const MAX_MARKS_PER_CHARACTER: usize = 8;

/// Shortest and longest username, in characters.
pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=64;

/// How a field's text is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRules {
    /// The most characters, counted after trimming and NFC normalization.
    pub max_chars: usize,
    /// Whether line breaks and tabs are allowed (free text such as a statement).
    pub multi_line: bool,
}

impl TextRules {
    /// A name or a one-line reason: no line breaks, no tabs.
    pub const fn single_line(max_chars: usize) -> TextRules {
        TextRules {
            max_chars,
            multi_line: false,
        }
    }

    /// Free text of several lines: LF and tab allowed (CR LF is kept as LF).
    pub const fn multi_line(max_chars: usize) -> TextRules {
        TextRules {
            max_chars,
            multi_line: true,
        }
    }
}

/// What kind of refused character was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharProblem {
    /// C0 or C1 control, or DEL (or a line break or tab in single-line text).
    Control,
    /// A bidirectional formatting character.
    Bidi,
    /// An invisible format character (zero-width space, joiner, BOM, ...).
    Invisible,
    /// U+2028 or U+2029.
    LineSeparator,
    /// A Unicode noncharacter (U+FDD0–U+FDEF, U+xxFFFE, U+xxFFFF).
    Noncharacter,
    /// A combining mark or variation selector with no character before it.
    Detached,
    /// More than [`MAX_MARKS_PER_CHARACTER`] combining marks on one character.
    TooManyMarks,
}

/// The sentence an error says about a refused character.
fn refused_message(ch: char, position: usize, problem: CharProblem) -> String {
    let what = match problem {
        CharProblem::Control => "a control character",
        CharProblem::Bidi => "a bidirectional control character",
        CharProblem::Invisible => "an invisible formatting character",
        CharProblem::LineSeparator => "a line or paragraph separator",
        CharProblem::Noncharacter => "a Unicode noncharacter",
        CharProblem::Detached => {
            "a combining mark or variation selector with no character before it"
        }
        CharProblem::TooManyMarks => {
            return format!(
                "must not put more than {MAX_MARKS_PER_CHARACTER} combining marks on one character ({} at position {position})",
                code_point(ch)
            )
        }
    };
    format!(
        "must not contain {what} ({}) at position {position}",
        code_point(ch)
    )
}

/// Why a text was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    /// Empty once trimmed.
    #[error("must not be empty")]
    Empty,
    /// Nothing visible: only spaces and blank or invisible characters.
    #[error("must contain visible characters, not only spaces or blanks")]
    Blank,
    /// Longer than allowed, in characters after normalization.
    #[error("must be at most {max} characters, found {found}")]
    TooLong {
        /// The limit.
        max: usize,
        /// Characters given (after trimming and NFC normalization).
        found: usize,
    },
    /// A character that is never accepted here.
    #[error("{}", refused_message(*.ch, *.position, *.problem))]
    Refused {
        /// The character.
        ch: char,
        /// 1-based position in the text as sent (before trimming).
        position: usize,
        /// Why it is refused.
        problem: CharProblem,
    },
}

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsernameError {
    /// Wrong length or a character outside the set.
    #[error(
        "must be {} to {} characters from a-z, 0-9, '.', '_' and '-'",
        USERNAME_LEN.start(),
        USERNAME_LEN.end()
    )]
    Invalid,
}

/// `U+XXXX`, as characters are named in errors.
pub fn code_point(ch: char) -> String {
    format!("U+{:04X}", u32::from(ch))
}

/// Checks and cleans a required text: trimmed, NFC, within `rules`.
pub fn clean(value: &str, rules: TextRules) -> Result<String, TextError> {
    check_characters(value, rules.multi_line)?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(TextError::Empty);
    }
    let unified = if rules.multi_line {
        trimmed.replace("\r\n", "\n")
    } else {
        trimmed.to_owned()
    };
    let normalized: String = unified.nfc().collect();
    // Normalizing can split a character into several marks (U+0344 is two): the
    // stored form must meet the rules too.
    check_characters(&normalized, rules.multi_line)?;
    if !normalized.chars().any(is_visible_base) {
        return Err(TextError::Blank);
    }
    let found = normalized.chars().count();
    if found > rules.max_chars {
        return Err(TextError::TooLong {
            max: rules.max_chars,
            found,
        });
    }
    Ok(normalized)
}

/// The first character of `value` that is refused in any text (control characters in
/// single-line text included), or `Ok` when there is none. Positions are 1-based, in
/// characters of `value` as given.
pub fn check_characters(value: &str, multi_line: bool) -> Result<(), TextError> {
    let mut previous: Option<char> = None;
    let mut marks = 0usize;
    let mut chars = value.chars().enumerate().peekable();
    while let Some((index, ch)) = chars.next() {
        let refuse = |problem| TextError::Refused {
            ch,
            position: index + 1,
            problem,
        };
        let line_break_ok = multi_line
            && match ch {
                '\n' | '\t' => true,
                '\r' => chars.peek().is_some_and(|&(_, next)| next == '\n'),
                _ => false,
            };
        if let Some(problem) = problem_of(ch).filter(|_| !line_break_ok) {
            return Err(refuse(problem));
        }
        if is_attached(ch) {
            // A mark or selector needs a visible character before it (or more marks
            // on one).
            let has_base = previous.is_some_and(|p| is_visible_base(p) || is_attached(p));
            if !has_base {
                return Err(refuse(CharProblem::Detached));
            }
            if is_combining_mark(ch) {
                marks += 1;
                if marks > MAX_MARKS_PER_CHARACTER {
                    return Err(refuse(CharProblem::TooManyMarks));
                }
            }
        } else {
            marks = 0;
        }
        previous = Some(ch);
    }
    Ok(())
}

/// A control character anywhere in `value` (C0, DEL or C1, tab and line breaks
/// included): for values that are not free text but must never carry one either, such
/// as a username typed at sign-in.
pub fn check_no_controls(value: &str) -> Result<(), TextError> {
    match value.chars().enumerate().find(|(_, ch)| ch.is_control()) {
        Some((index, ch)) => Err(TextError::Refused {
            ch,
            position: index + 1,
            problem: CharProblem::Control,
        }),
        None => Ok(()),
    }
}

/// A username (sign-in name): trimmed, [`USERNAME_LEN`] characters from `a-z`, `0-9`,
/// `.`, `_` and `-`. Plain ASCII, so two names that look alike are the same bytes.
pub fn username(value: &str) -> Result<String, UsernameError> {
    let value = value.trim();
    let ok = USERNAME_LEN.contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(UsernameError::Invalid)
    }
}

/// Why `ch` is refused wherever it appears, if it is.
/// Whether `ch` is refused wherever it stands in single-line text (a control,
/// bidirectional or invisible character, a separator, a noncharacter), whatever stands
/// around it: what is dropped from a name that is cleaned rather than refused.
pub fn refused_anywhere(ch: char) -> bool {
    problem_of(ch).is_some()
}

fn problem_of(ch: char) -> Option<CharProblem> {
    let c = u32::from(ch);
    if ch.is_control() {
        return Some(CharProblem::Control);
    }
    if matches!(c, 0x061C | 0x200E | 0x200F | 0x202A..=0x202E | 0x2066..=0x2069) {
        return Some(CharProblem::Bidi);
    }
    if matches!(c, 0x2028 | 0x2029) {
        return Some(CharProblem::LineSeparator);
    }
    if matches!(c, 0xFDD0..=0xFDEF) || c & 0xFFFE == 0xFFFE {
        return Some(CharProblem::Noncharacter);
    }
    let invisible = matches!(
        c,
        0x00AD // soft hyphen
            | 0x034F // combining grapheme joiner
            | 0x115F | 0x1160 | 0x3164 | 0xFFA0 // Hangul fillers
            | 0x17B4 | 0x17B5 // Khmer inherent vowels
            | 0x180E // Mongolian vowel separator
            | 0x200B..=0x200D // zero-width space, non-joiner, joiner
            | 0x2060..=0x2064 // word joiner, invisible operators
            | 0x206A..=0x206F // deprecated format characters
            | 0xFEFF // zero-width no-break space (BOM)
            | 0xFFF9..=0xFFFB // interlinear annotation
            | 0x1BCA0..=0x1BCA3 // shorthand format controls
            | 0x1D173..=0x1D17A // musical symbol format controls
            | 0xE0000..=0xE007F // tags
    );
    invisible.then_some(CharProblem::Invisible)
}

/// A variation selector (standard, ideographic, Mongolian free variation selectors):
/// allowed only on the character before it.
fn is_variation_selector(ch: char) -> bool {
    matches!(
        u32::from(ch),
        0xFE00..=0xFE0F | 0xE0100..=0xE01EF | 0x180B..=0x180D | 0x180F
    )
}

/// A character that modifies the one before it.
fn is_attached(ch: char) -> bool {
    is_combining_mark(ch) || is_variation_selector(ch)
}

/// Blank although not white space: the Braille blank and the Hangul fillers.
fn is_blank(ch: char) -> bool {
    ch.is_whitespace() || matches!(u32::from(ch), 0x2800 | 0x115F | 0x1160 | 0x3164 | 0xFFA0)
}

/// A character that shows something by itself.
fn is_visible_base(ch: char) -> bool {
    !is_blank(ch) && !is_attached(ch) && problem_of(ch).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAME: TextRules = TextRules::single_line(20);
    const STATEMENT: TextRules = TextRules::multi_line(200);

    fn refused(value: &str, rules: TextRules) -> (char, usize, CharProblem) {
        match clean(value, rules) {
            Err(TextError::Refused {
                ch,
                position,
                problem,
            }) => (ch, position, problem),
            other => panic!("{value:?} was not refused by character: {other:?}"),
        }
    }

    #[test]
    fn ordinary_names_pass_trimmed_and_normalized() {
        assert_eq!(
            clean("  滨州市公共资源交易中心 ", NAME).unwrap(),
            "滨州市公共资源交易中心"
        );
        assert_eq!(clean("Zhang San & Co.", NAME).unwrap(), "Zhang San & Co.");
        // Ideographic space inside is a space; at the ends it is trimmed.
        assert_eq!(clean("\u{3000}李　明\u{3000}", NAME).unwrap(), "李　明");
        // e + combining acute is composed to é (NFC): one character.
        let composed = clean("Cafe\u{301}", NAME).unwrap();
        assert_eq!(composed, "Caf\u{e9}");
        assert_eq!(composed.chars().count(), 4);
        // An ideographic variation sequence (a name's variant glyph) stays.
        assert_eq!(clean("葛\u{E0100}", NAME).unwrap(), "葛\u{E0100}");
        // Private-use characters carry rare name characters in GB 18030 systems.
        assert!(clean("王\u{E000}", NAME).is_ok());
    }

    #[test]
    fn bidi_controls_are_refused_with_position_and_code_point() {
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            let text = format!("ab{c}cd");
            assert_eq!(refused(&text, NAME), (c, 3, CharProblem::Bidi), "{text:?}");
        }
        let error = clean("Bank\u{202E}gpj.exe", NAME).unwrap_err();
        assert_eq!(
            error.to_string(),
            "must not contain a bidirectional control character (U+202E) at position 5"
        );
    }

    #[test]
    fn control_characters_are_refused_and_line_breaks_only_where_allowed() {
        assert_eq!(refused("a\u{0}b", NAME), ('\u{0}', 2, CharProblem::Control));
        assert_eq!(
            refused("a\u{0}b", STATEMENT),
            ('\u{0}', 2, CharProblem::Control)
        );
        for c in ['\u{1B}', '\u{7F}', '\u{85}', '\u{9F}', '\u{8}'] {
            assert_eq!(refused(&format!("x{c}"), STATEMENT).2, CharProblem::Control);
        }
        assert_eq!(refused("a\nb", NAME), ('\n', 2, CharProblem::Control));
        assert_eq!(refused("a\tb", NAME), ('\t', 2, CharProblem::Control));
        assert_eq!(
            clean("line one\r\n\tline two\n", STATEMENT).unwrap(),
            "line one\n\tline two"
        );
        // A bare CR (old Mac line end, or a terminal trick) is not a line break.
        assert_eq!(refused("a\rb", STATEMENT), ('\r', 2, CharProblem::Control));
        assert_eq!(
            refused("a\u{2028}b", STATEMENT),
            ('\u{2028}', 2, CharProblem::LineSeparator)
        );
        // The position counts characters of the text as sent, leading spaces included.
        assert_eq!(refused("  名\u{7}", NAME).1, 4);
    }

    #[test]
    fn invisible_characters_are_refused() {
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{AD}',
            '\u{3164}',
            '\u{115F}',
            '\u{E0041}',
            '\u{180E}',
            '\u{034F}',
        ] {
            assert_eq!(
                refused(&format!("ab{c}"), NAME),
                (c, 3, CharProblem::Invisible)
            );
        }
        assert_eq!(
            refused("a\u{FDD0}", NAME),
            ('\u{FDD0}', 2, CharProblem::Noncharacter)
        );
        assert_eq!(
            refused("a\u{FFFF}", NAME),
            ('\u{FFFF}', 2, CharProblem::Noncharacter)
        );
    }

    #[test]
    fn empty_and_blank_texts_are_refused() {
        assert_eq!(clean("", NAME), Err(TextError::Empty));
        assert_eq!(clean(" \u{3000}\u{A0} ", NAME), Err(TextError::Empty));
        assert_eq!(clean("\u{2800}\u{2800}", NAME), Err(TextError::Blank));
        assert_eq!(clean("\u{2800} \u{2800}", STATEMENT), Err(TextError::Blank));
        // Invisible-only or selector-only names never get as far as "blank".
        assert_eq!(refused("\u{200B}", NAME).2, CharProblem::Invisible);
        assert_eq!(
            refused("\u{FE0F}\u{FE0F}", NAME),
            ('\u{FE0F}', 1, CharProblem::Detached)
        );
        assert_eq!(
            refused(" \u{301}", NAME),
            ('\u{301}', 2, CharProblem::Detached)
        );
        assert_eq!(
            refused("a \u{FE00}", NAME),
            ('\u{FE00}', 3, CharProblem::Detached)
        );
    }

    #[test]
    fn zalgo_is_refused_but_ordinary_stacks_pass() {
        let ok = format!("a{}", "\u{301}".repeat(MAX_MARKS_PER_CHARACTER));
        assert!(clean(&ok, NAME).is_ok());
        let zalgo = format!("a{}", "\u{301}".repeat(MAX_MARKS_PER_CHARACTER + 1));
        assert_eq!(
            refused(&zalgo, NAME),
            (
                '\u{301}',
                MAX_MARKS_PER_CHARACTER + 2,
                CharProblem::TooManyMarks
            )
        );
        // Vietnamese: two marks on one letter.
        assert!(clean("Nguye\u{302}\u{303}n", NAME).is_ok());
    }

    #[test]
    fn length_counts_characters_after_normalization() {
        assert!(clean(&"字".repeat(20), NAME).is_ok());
        assert_eq!(
            clean(&"字".repeat(21), NAME),
            Err(TextError::TooLong { max: 20, found: 21 })
        );
        // 20 letters each with a combining accent compose to 20 characters.
        assert!(clean(&"e\u{301}".repeat(20), NAME).is_ok());
    }

    #[test]
    fn usernames_are_plain_ascii() {
        assert_eq!(username(" li.ming ").unwrap(), "li.ming");
        assert_eq!(username("a_b-9").unwrap(), "a_b-9");
        for bad in [
            "ab",
            "Admin",
            "li ming",
            "li\u{0}ming",
            "李明明",
            &"a".repeat(65),
            "ｌｉｍｉｎｇ",
        ] {
            assert_eq!(username(bad), Err(UsernameError::Invalid), "{bad:?}");
        }
        assert!(username(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn controls_alone_are_found_for_sign_in_names() {
        assert!(check_no_controls("Admin 李").is_ok());
        assert_eq!(
            check_no_controls("ad\u{0}min"),
            Err(TextError::Refused {
                ch: '\u{0}',
                position: 3,
                problem: CharProblem::Control
            })
        );
        assert_eq!(code_point('\u{0}'), "U+0000");
        assert_eq!(code_point('\u{E0100}'), "U+E0100");
    }

    fn refused_char() -> impl Strategy<Value = char> {
        prop_oneof![
            (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap()),
            (0x7Fu32..0xA0).prop_map(|c| char::from_u32(c).unwrap()),
            proptest::sample::select(vec![
                '\u{202A}',
                '\u{202E}',
                '\u{2066}',
                '\u{2069}',
                '\u{200E}',
                '\u{200F}',
                '\u{061C}',
                '\u{200B}',
                '\u{200D}',
                '\u{2060}',
                '\u{FEFF}',
                '\u{2028}',
                '\u{E0001}',
                '\u{3164}',
            ]),
        ]
    }

    proptest! {
        #[test]
        fn clean_never_panics(s in any::<String>(), max in 0usize..50, multi in any::<bool>()) {
            let rules = TextRules { max_chars: max, multi_line: multi };
            let _ = clean(&s, rules);
            let _ = check_no_controls(&s);
            let _ = username(&s);
        }

        #[test]
        fn accepted_text_is_clean_and_stable(s in any::<String>(), multi in any::<bool>()) {
            let rules = TextRules { max_chars: 1000, multi_line: multi };
            if let Ok(cleaned) = clean(&s, rules) {
                prop_assert_eq!(cleaned.trim(), cleaned.as_str());
                prop_assert!(cleaned.nfc().eq(cleaned.chars()), "not NFC: {:?}", cleaned);
                prop_assert!(cleaned.chars().all(|c| problem_of(c).is_none()
                    || (multi && matches!(c, '\n' | '\t'))));
                prop_assert!(cleaned.chars().any(is_visible_base));
                prop_assert!(!cleaned.contains('\r'));
                // Cleaning again changes nothing.
                prop_assert_eq!(clean(&cleaned, rules), Ok(cleaned.clone()));
            }
        }

        #[test]
        fn a_refused_character_anywhere_is_named_where_it_is(
            name in "[a-zA-Z0-9\u{4e00}-\u{4e50} ]{1,20}",
            at in 0usize..21,
            bad in refused_char(),
            multi in any::<bool>(),
        ) {
            let mut chars: Vec<char> = name.chars().collect();
            let at = at.min(chars.len());
            chars.insert(at, bad);
            let text: String = chars.into_iter().collect();
            let rules = TextRules { max_chars: 100, multi_line: multi };
            let allowed_here = multi && matches!(bad, '\n' | '\t');
            match clean(&text, rules) {
                Err(TextError::Refused { ch, position, .. }) => {
                    prop_assert!(!allowed_here);
                    prop_assert_eq!(ch, bad);
                    prop_assert_eq!(position, at + 1);
                }
                Err(TextError::Empty) | Err(TextError::Blank) => prop_assert!(allowed_here),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
                Ok(cleaned) => {
                    prop_assert!(allowed_here, "accepted {:?}", text);
                    let clean_of_refused = !cleaned.contains(['\u{0}', '\u{202E}']);
                    prop_assert!(clean_of_refused);
                }
            }
        }

        #[test]
        fn blank_only_texts_are_refused(
            s in proptest::collection::vec(
                proptest::sample::select(vec![' ', '\u{3000}', '\u{A0}', '\u{2800}', '\u{2003}']),
                0..10,
            )
        ) {
            let text: String = s.into_iter().collect();
            let result = clean(&text, NAME);
            prop_assert!(matches!(result, Err(TextError::Empty) | Err(TextError::Blank)), "{:?}", result);
        }
    }
}
