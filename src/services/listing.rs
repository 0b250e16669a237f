//! What every list shares, the API's and the pages' alike: its filters read from the
//! query string's name=value pairs (each name once, or repeated where a list allows it,
//! and nothing the list does not know), a sort order by a named key (`-` first for
//! descending), ranges of China days, and the problems found, each naming its field so
//! the API can answer 422 and a page can show it beside the field.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use std::str::FromStr;

use super::ServiceError;

/// A field of a list's query and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// Every problem found in a list's query, in the order of its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// The problem of `field`, if it has one.
    pub fn of(&self, field: &str) -> Option<&Problem> {
        self.0.iter().find(|p| p.field == field)
    }
}

/// The API answers the first problem, naming its field.
impl From<Problems> for ServiceError {
    fn from(p: Problems) -> ServiceError {
        match p.0.into_iter().next() {
            Some(Problem { field, message }) => ServiceError::Invalid { field, message },
            None => ServiceError::invalid("query", "is not valid"),
        }
    }
}

/// The name=value pairs of a list's query string, taken one name at a time. What is
/// left at the end is a name the list does not know, and a problem.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    problems: Vec<Problem>,
}

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Params {
        Params {
            pairs,
            problems: Vec::new(),
        }
    }

    /// The pairs of a raw query string (`a=1&b=2`), percent-decoded.
    pub fn from_query(query: &str) -> Params {
        Params::new(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// Takes every value of `name`.
    fn take(&mut self, name: &str) -> Vec<String> {
        let (taken, rest) = std::mem::take(&mut self.pairs)
            .into_iter()
            .partition(|(k, _)| k == name);
        self.pairs = rest;
        taken.into_iter().map(|(_, v)| v).collect()
    }

    /// The one value of `name`, trimmed; blank is the same as absent (a form sends its
    /// empty fields). Given twice is a problem.
    pub fn one(&mut self, name: &str) -> Option<String> {
        let mut values: Vec<String> = self
            .take(name)
            .into_iter()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        if values.len() > 1 {
            self.problem(name, "is given more than once");
            return None;
        }
        values.pop()
    }

    /// The values of a repeatable `name`, each also split at commas, blanks dropped.
    pub fn many(&mut self, name: &str) -> Vec<String> {
        self.take(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Records a problem of `field`.
    pub fn problem(&mut self, field: &str, message: impl std::fmt::Display) {
        self.problems.push(Problem {
            field: field.to_owned(),
            message: message.to_string(),
        });
    }

    /// Whether a problem of `field` was recorded.
    pub fn has_problem(&self, field: &str) -> bool {
        self.problems.iter().any(|p| p.field == field)
    }

    /// `value` when nothing was wrong and every name was known.
    pub fn finish<T>(mut self, value: T) -> Result<T, Problems> {
        let unknown: Vec<String> = self.pairs.iter().map(|(k, _)| k.clone()).collect();
        for name in unknown {
            if !self.has_problem(&name) {
                self.problem(&name, "is not a parameter of this list");
            }
        }
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(Problems(self.problems))
        }
    }
}

/// Values of a repeatable parameter parsed as `T` (states, kinds): unknown ones are a
/// problem of `field`.
pub fn parse_each<T: FromStr>(params: &mut Params, field: &str, values: &[String]) -> Vec<T> {
    let mut out = Vec::new();
    for v in values {
        match v.parse::<T>() {
            Ok(t) => out.push(t),
            Err(_) => {
                params.problem(field, format!("{v:?} is not a known value"));
                break;
            }
        }
    }
    out
}

/// The keys a list sorts by, by name, and the one it sorts by when none is asked.
pub trait SortKey: Copy + PartialEq + Sized + 'static {
    /// Every key with its name in the query string.
    const KEYS: &'static [(&'static str, Self)];
    /// The order a list has when none is asked.
    const DEFAULT: Sort<Self>;
}

/// A sort order: a key, ascending or descending. Every list adds a unique column after
/// the key, so rows with equal keys keep one order and pages neither repeat nor skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort<K> {
    pub key: K,
    pub descending: bool,
}

impl<K: SortKey> Sort<K> {
    /// `key` or `-key`.
    pub fn parse(text: &str) -> Option<Sort<K>> {
        let (name, descending) = match text.strip_prefix('-') {
            Some(name) => (name, true),
            None => (text, false),
        };
        K::KEYS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, key)| Sort {
                key: *key,
                descending,
            })
    }

    /// The order `text` (the `sort` parameter) asks for: the default when absent, a
    /// problem when unknown.
    pub fn read(params: &mut Params, text: Option<&str>) -> Sort<K> {
        match text {
            None => K::DEFAULT,
            Some(text) => Sort::parse(text).unwrap_or_else(|| {
                let names: Vec<&str> = K::KEYS.iter().map(|(n, _)| *n).collect();
                params.problem(
                    "sort",
                    format!(
                        "must be one of {} (a leading - sorts descending)",
                        names.join(", ")
                    ),
                );
                K::DEFAULT
            }),
        }
    }

    /// The key's name.
    pub fn name(&self) -> &'static str {
        K::KEYS
            .iter()
            .find(|(_, k)| *k == self.key)
            .map(|(n, _)| *n)
            .unwrap_or_default()
    }

    /// As the query string writes it.
    pub fn as_param(&self) -> String {
        format!("{}{}", if self.descending { "-" } else { "" }, self.name())
    }
}

/// A range of days (China time), both ends inclusive and optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayRange {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl DayRange {
    /// The range typed as `from` and `to` (`YYYY-MM-DD`, each named by its parameter);
    /// a malformed date, one outside the window, or `from` after `to` is a problem.
    pub fn read(
        params: &mut Params,
        (from_name, from): (&str, Option<&str>),
        (to_name, to): (&str, Option<&str>),
    ) -> DayRange {
        let from = from.and_then(|t| day(params, from_name, t));
        let to = to.and_then(|t| day(params, to_name, t));
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                params.problem(to_name, format!("must not be before {from_name}"));
            }
        }
        DayRange { from, to }
    }

    /// The first moment (UTC) of the range, if it has a start.
    pub fn start(&self) -> Option<NaiveDateTime> {
        self.from.map(|d| china_day_start(d, 0))
    }

    /// The first moment (UTC) after the range, if it has an end.
    pub fn end(&self) -> Option<NaiveDateTime> {
        self.to.map(|d| china_day_start(d, 1))
    }
}

/// A day typed as `YYYY-MM-DD`, inside the window clients may name.
fn day(params: &mut Params, field: &str, text: &str) -> Option<NaiveDate> {
    let parsed = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|d| {
            (crate::domain::time::EARLIEST_DATE..=crate::domain::time::LATEST_DATE).contains(d)
        });
    if parsed.is_none() {
        params.problem(
            field,
            format!(
                "must be a date like 2026-12-20 between {} and {}",
                crate::domain::time::EARLIEST_DATE,
                crate::domain::time::LATEST_DATE
            ),
        );
    }
    parsed
}

/// The start (UTC) of the China day `days_after` days after `day`.
pub fn china_day_start(day: NaiveDate, days_after: i64) -> NaiveDateTime {
    day.and_time(NaiveTime::MIN) + chrono::Duration::days(days_after) - chrono::Duration::hours(8)
}

// Searches ignore case alike on both backends (SQLite's `LIKE` ignores ASCII case,
// PostgreSQL's does not): both sides are lowered first.
diesel::define_sql_function!(
    /// SQL `lower(text)`.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text
);

/// A `LIKE` pattern matching text that starts with `text`, its own `%`, `_` and
/// backslash taken literally (use with `.escape('\\')`).
pub fn prefix_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A `LIKE` pattern matching `text` anywhere (use with `.escape('\\')`).
pub fn contains_pattern(text: &str) -> String {
    format!("%{}", prefix_pattern(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Key {
        Made,
        Amount,
    }

    impl SortKey for Key {
        const KEYS: &'static [(&'static str, Key)] =
            &[("made", Key::Made), ("amount", Key::Amount)];
        const DEFAULT: Sort<Key> = Sort {
            key: Key::Made,
            descending: true,
        };
    }

    fn params(query: &str) -> Params {
        Params::from_query(query)
    }

    #[test]
    fn sort_keys_parse_both_ways_and_unknown_ones_are_a_problem() {
        let s = Sort::<Key>::parse("-amount").expect("known");
        assert_eq!(
            (s.key, s.descending, s.as_param()),
            (Key::Amount, true, "-amount".into())
        );
        assert_eq!(
            Sort::<Key>::parse("made").map(|s| s.descending),
            Some(false)
        );
        assert!(Sort::<Key>::parse("--made").is_none());
        let mut p = params("sort=price");
        let typed = p.one("sort");
        assert_eq!(Sort::<Key>::read(&mut p, typed.as_deref()), Key::DEFAULT);
        let problems = p.finish(()).expect_err("unknown key");
        assert_eq!(problems.0[0].field, "sort");
        let mut p = params("");
        assert_eq!(Sort::<Key>::read(&mut p, None), Key::DEFAULT);
    }

    #[test]
    fn repeated_and_comma_values_are_one_list_and_unknown_names_are_refused() {
        let mut p = params("state=a,b&state=c&x=1&state=");
        assert_eq!(p.many("state"), ["a", "b", "c"]);
        let problems = p.finish(()).expect_err("x is unknown");
        assert_eq!(problems.0.len(), 1);
        assert_eq!(problems.0[0].field, "x");
        let mut p = params("number=1&number=2");
        assert_eq!(p.one("number"), None);
        assert!(p.finish(()).is_err());
        let mut p = params("number=+&q=%20x%20");
        assert_eq!((p.one("number"), p.one("q")), (None, Some("x".into())));
        assert!(p.finish(()).is_ok());
    }

    #[test]
    fn day_ranges_are_china_days_inclusive_and_checked() {
        let read = |p: &mut Params| {
            let (from, to) = (p.one("from"), p.one("to"));
            DayRange::read(p, ("from", from.as_deref()), ("to", to.as_deref()))
        };
        let mut p = params("from=2026-12-01&to=2026-12-02");
        let range = read(&mut p);
        assert!(p.finish(()).is_ok());
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
        assert_eq!(range.start(), Some(at("2026-11-30 16:00")));
        assert_eq!(range.end(), Some(at("2026-12-02 16:00")));
        for (query, field) in [
            ("from=2026-12-03&to=2026-12-02", "to"),
            ("from=yesterday", "from"),
            ("to=9999-01-01", "to"),
            ("from=2026-02-30", "from"),
        ] {
            let mut p = params(query);
            read(&mut p);
            let problems = p.finish(()).expect_err(query);
            assert_eq!(problems.0[0].field, field, "{query}");
        }
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(prefix_pattern("BH_1%"), "BH\\_1\\%%");
        assert_eq!(contains_pattern("a\\b"), "%a\\\\b%");
    }
}
