//! Lists on pages: which page of how many rows, read from the query string (so a list
//! is bookmarkable), and the links to the pages before and after, keeping the filters.

use serde::Deserialize;

use super::i18n::Tr;
use crate::services::listing::{Params, Problems, Sort, SortKey};

/// The rows a list shows by default, and the most it shows at once.
pub const DEFAULT_SIZE: u32 = 20;
pub const MAX_SIZE: u32 = 100;

/// `?page=N&size=M` (1-based), clamped to sane values whatever was typed.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct PageQuery {
    pub page: Option<u32>,
    pub size: Option<u32>,
}

/// A page of a list: what to ask the database for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// 1-based.
    pub page: u32,
    pub size: u32,
}

impl Paging {
    pub fn from_query(q: &PageQuery) -> Paging {
        Paging::of(q.page, q.size, DEFAULT_SIZE)
    }

    /// A page as typed (1-based page, rows per page, `default_size` when not given),
    /// clamped to sane values: for a page that holds several lists, each with its own
    /// page number in the query string.
    pub fn of(page: Option<u32>, size: Option<u32>, default_size: u32) -> Paging {
        Paging {
            page: page.unwrap_or(1).max(1),
            size: size.unwrap_or(default_size).clamp(1, MAX_SIZE),
        }
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.size)
    }

    pub fn limit(&self) -> i64 {
        i64::from(self.size)
    }

    /// The window the services page by.
    pub fn window(&self) -> crate::services::Window {
        crate::services::Window {
            offset: self.offset(),
            limit: self.limit(),
        }
    }
}

/// What a list page shows under its table: the total and the links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pager {
    pub total: i64,
    pub page: u32,
    pub pages: u32,
    pub previous: Option<String>,
    pub next: Option<String>,
    /// What the pager's navigation is called, when a page has several lists (else the
    /// catalogue's "Pages").
    pub label: Option<String>,
}

impl Pager {
    /// `base` is the list's path with its filters as a query string (without `page`),
    /// e.g. `/issuer/queue?state=submitted`.
    pub fn new(base: &str, paging: Paging, total: i64) -> Pager {
        Pager::keyed(base, "page", paging, total, "")
    }

    /// The pager of one of several lists on a page: its page number travels as `key`
    /// (e.g. `new_page`), `base` carries the other lists' page numbers so they stay
    /// where they are, and the links end in `#anchor` (the list's heading) when given.
    pub fn keyed(base: &str, key: &str, paging: Paging, total: i64, anchor: &str) -> Pager {
        let size = i64::from(paging.size);
        let pages = u32::try_from(((total + size - 1) / size).max(1)).unwrap_or(u32::MAX);
        let fragment = if anchor.is_empty() {
            String::new()
        } else {
            format!("#{anchor}")
        };
        let link = |page: u32| {
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}{key}={page}&size={}{fragment}", paging.size)
        };
        Pager {
            total,
            page: paging.page,
            pages,
            previous: (paging.page > 1).then(|| link(paging.page - 1)),
            next: (paging.page < pages).then(|| link(paging.page + 1)),
            label: None,
        }
    }

    /// The same pager, its navigation called `label`.
    pub fn labelled(self, label: String) -> Pager {
        Pager {
            label: Some(label),
            ..self
        }
    }
}

/// A query string of the filters that are set, for a list's links (values
/// percent-encoded).
pub fn query_of(filters: &[(&str, Option<&str>)]) -> String {
    let parts: Vec<String> = filters
        .iter()
        .filter_map(|(k, v)| {
            v.filter(|v| !v.is_empty())
                .map(|v| format!("{k}={}", super::errors::urlencode(v)))
        })
        .collect();
    parts.join("&")
}

/// A field of a form and what is wrong with it (already in the visitor's words).
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A choice of a list's state select.
pub struct StateOption {
    pub value: &'static str,
    pub words: String,
    pub selected: bool,
}

/// A list page's request: which page (`page`, `size`), and the filters among `known`
/// (names the list does not know, from a link elsewhere, are left out rather than
/// refused: this is a page for people).
pub fn list_request(req: &actix_web::HttpRequest, known: &[&str]) -> (Paging, Params) {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let number = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.trim().parse::<u32>().ok())
    };
    let paging = Paging::from_query(&PageQuery {
        page: number("page"),
        size: number("size"),
    });
    let filters = pairs
        .iter()
        .filter(|(k, _)| known.contains(&k.as_str()))
        .cloned()
        .collect();
    (paging, Params::new(filters))
}

/// A sortable column's heading: its link (keeping the filters) and, on the column the
/// list is sorted by, its `aria-sort`.
pub struct SortHeading {
    pub label: String,
    pub href: String,
    pub aria_sort: Option<&'static str>,
}

impl SortHeading {
    /// The heading `label` of the column sorted by `key`, the list being sorted by
    /// `current`; `href` makes a link of the list sorted as asked. A click on the
    /// sorted column turns its order round; on another, it sorts ascending.
    pub fn new<K: SortKey>(
        label: String,
        key: K,
        current: Sort<K>,
        href: impl Fn(&str) -> String,
    ) -> SortHeading {
        let here = current.key == key;
        let next = Sort {
            key,
            descending: here && !current.descending,
        };
        SortHeading {
            label,
            href: href(&next.as_param()),
            aria_sort: here.then_some(if current.descending {
                "descending"
            } else {
                "ascending"
            }),
        }
    }
}

/// The problems of a list's filters as the errors beside its fields (one per field),
/// each in the visitor's words.
pub fn field_errors(tr: Tr, problems: Problems) -> Vec<FieldError> {
    let mut errors: Vec<FieldError> = Vec::new();
    for p in problems.0 {
        if errors.iter().any(|e| e.field == p.field) {
            continue;
        }
        let key = match p.field.as_str() {
            "state" => "list-error-state",
            "sort" => "list-error-sort",
            "from" | "to" => "list-error-date",
            _ => "list-error-value",
        };
        errors.push(FieldError {
            message: tr.t(key),
            field: p.field,
        });
    }
    errors
}

/// The message of `field` among `errors`, if it has one.
pub fn error_of<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_are_clamped() {
        let p = Paging::from_query(&PageQuery {
            page: Some(0),
            size: Some(10_000),
        });
        assert_eq!((p.page, p.size, p.offset()), (1, MAX_SIZE, 0));
        let p = Paging::from_query(&PageQuery {
            page: Some(3),
            size: None,
        });
        assert_eq!((p.offset(), p.limit()), (40, 20));
    }

    #[test]
    fn the_pager_links_keep_the_filters() {
        let pager = Pager::new("/issuer/queue?state=paid", Paging { page: 2, size: 20 }, 45);
        assert_eq!(pager.pages, 3);
        assert_eq!(
            pager.previous.as_deref(),
            Some("/issuer/queue?state=paid&page=1&size=20")
        );
        assert_eq!(
            pager.next.as_deref(),
            Some("/issuer/queue?state=paid&page=3&size=20")
        );
        // One of several lists: its own key and anchor, the others' pages kept.
        let part = Pager::keyed(
            "/issuer/queue?paid_page=3",
            "new_page",
            Paging { page: 2, size: 5 },
            11,
            "new",
        );
        assert_eq!(part.pages, 3);
        assert_eq!(
            part.next.as_deref(),
            Some("/issuer/queue?paid_page=3&new_page=3&size=5#new")
        );
        assert_eq!(
            part.previous.as_deref(),
            Some("/issuer/queue?paid_page=3&new_page=1&size=5#new")
        );
        assert_eq!(Paging::of(None, Some(0), 50), Paging { page: 1, size: 1 });
        assert_eq!(Paging::of(Some(4), None, 50).offset(), 150);
        let empty = Pager::new("/projects", Paging { page: 1, size: 20 }, 0);
        assert_eq!((empty.pages, empty.previous, empty.next), (1, None, None));
        assert_eq!(
            query_of(&[("q", Some("滨州 A")), ("state", None)]),
            "q=%E6%BB%A8%E5%B7%9E%20A"
        );
    }
}
