//! The forms of the pages, once: the errors shown beside each field in the visitor's
//! words, what became of a form sent to a service (done, or refused on one field), and
//! the answer of a form shown again (422 when it carries errors). A page's template
//! reads its `errors` field (`errors.get("field")`), so no page repeats the lookup.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::errors::PageError;
use super::i18n::{Lang, Tr};
use super::{page, Chrome};
use crate::services::ServiceError;

/// The errors of a form, by the form's field id, in the order the summary lists them.
#[derive(Debug, Default)]
pub struct FieldErrors {
    pub list: Vec<(String, String)>,
}

impl FieldErrors {
    /// The one error of a form refused on `field`.
    pub fn one(tr: Tr, field: &str, key: &str, service_message: &str) -> FieldErrors {
        let mut errors = FieldErrors::default();
        errors.refused(tr, field, key, service_message);
        errors
    }

    /// Adds `message` to `field` unless the field already has one (the first stands).
    pub fn add(&mut self, field: &str, message: String) {
        if !self.list.iter().any(|(f, _)| f == field) {
            self.list.push((field.to_owned(), message));
        }
    }

    pub fn get(&self, field: impl AsRef<str>) -> Option<&str> {
        self.list
            .iter()
            .find(|(f, _)| f == field.as_ref())
            .map(|(_, m)| m.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The message of a refusal on `field` (a form id): the catalogue's words under
    /// `key`, and in English the service's own precise words beside them (the services
    /// write in English).
    pub fn refused(&mut self, tr: Tr, field: &str, key: &str, service_message: &str) {
        let mut message = tr.t(key);
        if tr.lang == Lang::En && !service_message.is_empty() {
            message = format!("{message} ({service_message})");
        }
        self.add(field, message);
    }
}

/// What became of a form sent to a service.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    /// The service refused one field (as the service names it) with its message.
    Refused {
        field: String,
        message: String,
    },
}

/// Sends a form to a service off the request thread. A refusal of one of its fields
/// comes back as [`Outcome::Refused`] for the page to show beside the field; a conflict
/// too when `conflict_on` names the field it belongs to. Anything else is the page's
/// error (403, 404, 409 ... pages).
pub async fn submit<T: Send + 'static>(
    conflict_on: Option<&'static str>,
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<Outcome<T>, PageError> {
    match web::block(f).await? {
        Ok(done) => Ok(Outcome::Done(done)),
        Err(ServiceError::Invalid { field, message }) => Ok(Outcome::Refused { field, message }),
        Err(ServiceError::Conflict(message)) if conflict_on.is_some() => Ok(Outcome::Refused {
            field: conflict_on.unwrap_or_default().to_owned(),
            message,
        }),
        Err(e) => Err(e.into()),
    }
}

/// A form page: 200 when it is blank or as stored, 422 when it was `refused` (shown
/// again with its errors).
pub fn form_page(chrome: &Chrome, html: String, refused: bool) -> HttpResponse {
    let mut res = page(chrome, html);
    if refused {
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    res
}

/// A form posted as names and values, read as typed.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Typed(pub BTreeMap<String, String>);

impl Typed {
    /// The value as typed (empty when the field was not sent).
    pub fn value(&self, key: &str) -> String {
        self.0.get(key).cloned().unwrap_or_default()
    }

    /// The value trimmed, `None` when blank or not sent.
    pub fn optional(&self, key: &str) -> Option<String> {
        self.0
            .get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Forgets a value that must never be sent back (a password, a private key).
    pub fn forget(&mut self, key: &str) {
        self.0.remove(key);
    }

    /// Only the form's own `fields` of what was posted (empty when not sent), each cut
    /// to `max_chars` characters: what a form keeps and shows again.
    pub fn only(&self, fields: &[&str], max_chars: usize) -> Typed {
        Typed(
            fields
                .iter()
                .map(|f| {
                    (
                        f.to_string(),
                        self.value(f).chars().take(max_chars).collect(),
                    )
                })
                .collect(),
        )
    }
}

/// A select's options: (value, text, chosen).
pub type Options = Vec<(&'static str, String, bool)>;

/// The options of a select over every value of an enum (by `as_str`), each labelled by
/// the message `<prefix><value>` or, without a prefix, by the value itself; `chosen`
/// is selected.
pub fn options<T: Copy>(
    tr: Tr,
    prefix: Option<&str>,
    all: &[T],
    as_str: fn(T) -> &'static str,
    chosen: &str,
) -> Options {
    all.iter()
        .map(|v| {
            let value = as_str(*v);
            let text = match prefix {
                Some(prefix) => tr.t(&format!("{prefix}{value}")),
                None => value.to_owned(),
            };
            (value, text, value == chosen)
        })
        .collect()
}

/// Checks for the forms' unit tests: each field's error key exists in both languages,
/// and a form's fields are exactly those of the API body it posts.
#[cfg(test)]
pub(crate) mod checks {
    use super::super::i18n::{Lang, Tr};

    /// `<prefix><field with hyphens>` exists in every language, for each field.
    pub fn error_keys_exist(prefix: &str, fields: &[&str]) {
        for lang in Lang::ALL {
            let tr = Tr::new(lang);
            for f in fields {
                let key = format!("{prefix}{}", f.replace('_', "-"));
                assert!(tr.has(&key), "{key} in {lang:?}");
            }
        }
    }

    /// `<prefix><value>` exists in every language, for each value a page makes a key
    /// from (states, reasons, kinds).
    pub fn value_keys_exist<T: std::fmt::Display>(prefix: &str, values: &[T]) {
        for lang in Lang::ALL {
            let tr = Tr::new(lang);
            for v in values {
                let key = format!("{prefix}{v}");
                assert!(tr.has(&key), "{key} in {lang:?}");
            }
        }
    }

    /// The form's fields are the keys of the API body `T` (as its default serializes).
    pub fn fields_are_the_api_body<T: Default + serde::Serialize>(fields: &[&str]) {
        let api = serde_json::to_value(T::default()).expect("json");
        let mut api: Vec<&str> = api
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let mut form = fields.to_vec();
        api.sort_unstable();
        form.sort_unstable();
        assert_eq!(api, form);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_of_a_field_stands_and_the_order_is_kept() {
        let mut errors = FieldErrors::default();
        errors.add("b", "first".into());
        errors.add("a", "other".into());
        errors.add("b", "second".into());
        assert_eq!(errors.get("b"), Some("first"));
        assert_eq!(
            errors
                .list
                .iter()
                .map(|(f, _)| f.as_str())
                .collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(errors.get("c"), None);
    }

    #[test]
    fn english_shows_the_service_words_beside_the_catalogue_words_chinese_does_not() {
        let en = FieldErrors::one(Tr::new(Lang::En), "code", "agency-error-code", "too long");
        let zh = FieldErrors::one(Tr::new(Lang::Zh), "code", "agency-error-code", "too long");
        let en = en.get("code").unwrap_or_default().to_owned();
        let zh = zh.get("code").unwrap_or_default().to_owned();
        assert!(en.ends_with("(too long)"), "{en}");
        assert!(!zh.contains("too long"), "{zh}");
        assert_ne!(zh, "agency-error-code", "the key is in the catalogue");
    }

    #[test]
    fn a_typed_form_gives_blank_for_what_was_not_sent_and_forgets_secrets() {
        let mut form = Typed(BTreeMap::from([
            ("name".to_owned(), "  A  ".to_owned()),
            ("blank".to_owned(), "   ".to_owned()),
            ("password".to_owned(), "secret".to_owned()),
        ]));
        assert_eq!(form.value("name"), "  A  ");
        assert_eq!(form.optional("name").as_deref(), Some("A"));
        assert_eq!(form.optional("blank"), None);
        assert_eq!(form.value("missing"), "");
        form.forget("password");
        assert!(!form.has("password"));
    }
}
