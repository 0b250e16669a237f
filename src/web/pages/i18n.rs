//! The pages' words: Fluent catalogues under `locales/<language>/*.ftl`, embedded at
//! build time, Simplified Chinese by default and English by choice. A page's language is
//! the one the visitor chose (a cookie set by the switch), else the first supported one
//! in `Accept-Language`, else Chinese.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use actix_web::HttpRequest;
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{static_loader, LanguageIdentifier, Loader};

static_loader! {
    static CATALOGUES = {
        locales: "./locales",
        fallback_language: "zh-CN",
        // Fluent wraps arguments in Unicode isolation marks by default, which would
        // show up inside numbers people copy (guarantee numbers, amounts).
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The cookie that remembers the visitor's choice.
pub const LANG_COOKIE: &str = "baohan_lang";

/// A language the pages are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Zh, Lang::En];

    /// The BCP 47 tag, as in `<html lang>` and the catalogue folders.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language a tag names, if the pages are written in it (`zh`, `zh-CN`,
    /// `zh-Hans`, `en`, `en-GB`, ...).
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The visitor's language: the remembered choice, then `Accept-Language` (by
    /// quality), then Chinese.
    pub fn of(req: &HttpRequest) -> Lang {
        if let Some(lang) = req
            .cookie(LANG_COOKIE)
            .and_then(|c| Lang::from_tag(c.value()))
        {
            return lang;
        }
        req.headers()
            .get(actix_web::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Lang::from_accept_language)
            .unwrap_or(Lang::Zh)
    }

    /// The best supported language of an `Accept-Language` value.
    pub fn from_accept_language(value: &str) -> Option<Lang> {
        let mut offered: Vec<(f32, Lang)> = value
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let lang = Lang::from_tag(parts.next()?)?;
                let quality = parts
                    .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                    .unwrap_or(1.0_f32);
                (quality > 0.0).then_some((quality, lang))
            })
            .collect();
        // Stable: of equal qualities the first listed wins.
        offered.sort_by(|a, b| b.0.total_cmp(&a.0));
        offered.first().map(|(_, lang)| *lang)
    }

    fn id(self) -> &'static LanguageIdentifier {
        static IDS: LazyLock<[LanguageIdentifier; 2]> = LazyLock::new(|| {
            Lang::ALL.map(|l| {
                l.tag()
                    .parse()
                    .unwrap_or_else(|_| unreachable!("the tags are valid"))
            })
        });
        &IDS[self.index()]
    }

    fn index(self) -> usize {
        match self {
            Lang::Zh => 0,
            Lang::En => 1,
        }
    }
}

/// The messages without arguments already looked up, per language: the catalogues are
/// embedded and never change, and a page asks for dozens of them (its navigation, its
/// labels), each a negotiation of languages and a bundle lookup otherwise. Only keys the
/// catalogue has are kept, so the memo is bounded by the catalogue.
static LOOKED_UP: LazyLock<[RwLock<HashMap<String, String>>; 2]> =
    LazyLock::new(|| Lang::ALL.map(|_| RwLock::new(HashMap::new())));

/// Looks words up in one language, for a page's templates.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    pub fn new(lang: Lang) -> Tr {
        Tr { lang }
    }

    /// The message `key`. A key missing from the catalogue shows as itself (the
    /// catalogue test keeps that from shipping).
    pub fn t(&self, key: &str) -> String {
        let memo = &LOOKED_UP[self.lang.index()];
        if let Some(found) = memo.read().ok().and_then(|m| m.get(key).cloned()) {
            return found;
        }
        match CATALOGUES.try_lookup(self.lang.id(), key) {
            Some(found) => {
                if let Ok(mut m) = memo.write() {
                    m.insert(key.to_owned(), found.clone());
                }
                found
            }
            None => key.to_owned(),
        }
    }

    /// The message `key` with one argument.
    pub fn t1(&self, key: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args: HashMap<Cow<'static, str>, FluentValue<'_>> = HashMap::new();
        args.insert(
            Cow::Owned(name.to_owned()),
            FluentValue::from(value.to_string()),
        );
        CATALOGUES
            .try_lookup_with_args(self.lang.id(), key, &args)
            .unwrap_or_else(|| key.to_owned())
    }

    /// The message `key` with two arguments.
    pub fn t2(
        &self,
        key: &str,
        first: (&str, impl std::fmt::Display),
        second: (&str, impl std::fmt::Display),
    ) -> String {
        let mut args: HashMap<Cow<'static, str>, FluentValue<'_>> = HashMap::new();
        for (name, value) in [
            (first.0, first.1.to_string()),
            (second.0, second.1.to_string()),
        ] {
            args.insert(Cow::Owned(name.to_owned()), FluentValue::from(value));
        }
        CATALOGUES
            .try_lookup_with_args(self.lang.id(), key, &args)
            .unwrap_or_else(|| key.to_owned())
    }

    /// Whether the catalogue has `key` in this language.
    pub fn has(&self, key: &str) -> bool {
        CATALOGUES.try_lookup(self.lang.id(), key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Some(Lang::En));
        assert_eq!(
            Lang::from_accept_language("fr;q=1, en;q=0.5, zh-CN;q=0.8"),
            Some(Lang::Zh)
        );
        assert_eq!(Lang::from_accept_language("zh-Hans"), Some(Lang::Zh));
        assert_eq!(Lang::from_accept_language("de, fr"), None);
        assert_eq!(Lang::from_accept_language("en;q=0"), None);
        assert_eq!(Lang::from_accept_language(""), None);
    }

    #[test]
    fn a_message_is_found_in_each_language_and_takes_its_argument() {
        let zh = Tr::new(Lang::Zh);
        let en = Tr::new(Lang::En);
        assert_eq!(zh.t("service-name"), "保函");
        assert_eq!(en.t("service-name"), "Baohan");
        assert_eq!(en.t1("list-total", "count", 3), "3 in all");
        assert_eq!(en.t("no-such-key"), "no-such-key");
        assert!(!en.has("no-such-key"));
    }
}

/// Every page's text exists in both languages: the catalogues hold the same keys, and
/// every key the templates and page handlers name is in them.
#[cfg(test)]
mod catalogue_tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;

    fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                files(&path, ext, out);
            } else if path.extension().is_some_and(|e| e == ext) {
                out.push(path);
            }
        }
    }

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    /// The message ids of one language's catalogues.
    fn keys(lang: Lang) -> BTreeSet<String> {
        let mut paths = Vec::new();
        files(&root().join("locales").join(lang.tag()), "ftl", &mut paths);
        assert!(!paths.is_empty(), "no catalogue for {}", lang.tag());
        let mut keys = BTreeSet::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("catalogue");
            for line in text.lines() {
                let starts_message = line.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
                if let (true, Some((key, _))) = (starts_message, line.split_once(" =")) {
                    assert!(
                        keys.insert(key.trim().to_owned()),
                        "{key} twice in {}",
                        lang.tag()
                    );
                }
            }
        }
        keys
    }

    /// Keys named literally: `t("key")` and `t1("key", ...)` in templates and pages.
    fn used_keys() -> BTreeSet<String> {
        let mut paths = Vec::new();
        files(&root().join("templates"), "html", &mut paths);
        files(&root().join("src/web/pages"), "rs", &mut paths);
        // This file's own tests name a key that must not exist.
        paths.retain(|p| !p.ends_with("i18n.rs"));
        let pattern = regex::Regex::new(r#"\bt1?\(\s*"([a-z0-9-]+)""#).expect("regex");
        let mut used = BTreeSet::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).expect("source");
            for c in pattern.captures_iter(&text) {
                used.insert(c[1].to_owned());
            }
        }
        used
    }

    #[test]
    fn both_languages_have_every_key() {
        let zh = keys(Lang::Zh);
        let en = keys(Lang::En);
        let only_zh: Vec<_> = zh.difference(&en).collect();
        let only_en: Vec<_> = en.difference(&zh).collect();
        assert!(
            only_zh.is_empty() && only_en.is_empty(),
            "only in zh-CN: {only_zh:?}; only in en: {only_en:?}"
        );
        let used = used_keys();
        assert!(used.len() > 50, "the scan finds the keys: {}", used.len());
        let missing: Vec<_> = used.difference(&zh).collect();
        assert!(missing.is_empty(), "used but in no catalogue: {missing:?}");
    }

    #[test]
    fn keys_made_from_names_exist() {
        let zh = keys(Lang::Zh);
        let roles = [
            "operator",
            "enterprise",
            "issuer",
            "agency",
            "tenderee",
            "provider",
            "person",
        ];
        let results = ["passed", "failed", "indeterminate", "skipped"];
        let verdicts = ["passed", "failed", "indeterminate"];
        let checks = [
            "format",
            "integrity",
            "signature-value",
            "certificate-chain",
            "key-usage",
            "signature-policy",
            "signing-time",
            "certificate-validity",
            "revocation",
            "issuer-binding",
            "registration",
            "status",
            "expectations",
        ];
        let mut wanted: Vec<String> = Vec::new();
        wanted.extend(roles.iter().map(|r| format!("role-{r}")));
        wanted.extend(results.iter().map(|r| format!("result-{r}")));
        wanted.extend(verdicts.iter().map(|v| format!("verdict-{v}")));
        wanted.extend(verdicts.iter().map(|v| format!("verdict-{v}-advice")));
        wanted.extend(checks.iter().map(|c| format!("check-{c}")));
        {
            use crate::domain::catalogue::{MatterPath, SubjectKind, WriteOffState};
            wanted.extend(MatterPath::ALL.iter().map(|p| format!("matter-path-{p}")));
            wanted.extend(WriteOffState::ALL.iter().map(|s| format!("write-off-{s}")));
            wanted.extend(
                SubjectKind::ALL
                    .iter()
                    .map(|s| format!("matter-subject-{s}")),
            );
        }
        // A guarantee's page: its reductions' states and its letters' kinds.
        wanted.extend(
            crate::domain::reduction::ReductionState::ALL
                .iter()
                .map(|s| format!("reduction-state-{s}")),
        );
        wanted.extend(
            crate::domain::letter::LetterKind::ALL
                .iter()
                .map(|k| format!("letter-kind-{k}")),
        );
        let missing: Vec<_> = wanted.iter().filter(|k| !zh.contains(*k)).collect();
        assert!(missing.is_empty(), "{missing:?}");
    }
}
