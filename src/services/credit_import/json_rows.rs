//! A batch bound as one parameter: the rows as a JSON array of arrays, unpacked by the
//! database (`jsonb_each` on SQLite, `jsonb_array_elements` on PostgreSQL).
//!
//! A statement of 1,000 rows with a placeholder per value has a different text for
//! every row count and 17,000 values to bind: SQLite parsed and prepared each one anew
//! (a tenth of an import's time) and diesel formatted and bound every value on its own.
//! With one JSON parameter the text of each statement is the same for any batch, so
//! either backend prepares it once per connection, and the batch is one string built by
//! serde.

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::{Serialize, Serializer};

/// A column of a batch: its name and its PostgreSQL type. Each row is a JSON array of
/// the columns' values in order (SQLite takes a value as it is: text, integer, or 1/0
/// for true/false; PostgreSQL casts the text of each to the type).
pub(super) type Column = (&'static str, &'static str);

/// The rows of the JSON array bound as parameter 1, as a table `v` of `columns`, for a
/// `FROM` clause. SQLite's `jsonb_each` hands each row over as its binary form, which
/// `->>` reads by position without parsing it again.
pub(super) fn rows_of(pg: bool, columns: &[Column]) -> String {
    let picked: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (n, t))| {
            if pg {
                format!("(e ->> {i})::{t} AS {n}")
            } else {
                format!("value ->> {i} AS {n}")
            }
        })
        .collect();
    if pg {
        format!(
            "(SELECT {} FROM jsonb_array_elements($1::jsonb) AS e) AS v",
            picked.join(", ")
        )
    } else {
        format!("(SELECT {} FROM jsonb_each(?1)) AS v", picked.join(", "))
    }
}

/// Parameter `n` (after the batch, which is 1) of PostgreSQL type `ty`.
pub(super) fn param(pg: bool, n: usize, ty: &str) -> String {
    if pg {
        format!("${n}::{ty}")
    } else {
        format!("?{n}")
    }
}

/// `INSERT INTO table (columns, constant columns) SELECT ... FROM <the batch>`: the
/// batch's `columns` from each row, and each of `constants` (a column and the SQL of
/// its value, the same for every row: a parameter or a literal); `tail` after it
/// (`WHERE true` lets SQLite read an `ON CONFLICT` after an `INSERT ... SELECT`).
pub(super) fn insert_sql(
    pg: bool,
    table: &str,
    columns: &[Column],
    constants: &[(&str, String)],
    tail: &str,
) -> String {
    let mut names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let mut values: Vec<String> = columns.iter().map(|(n, _)| format!("v.{n}")).collect();
    for (name, value) in constants {
        names.push(name);
        values.push(value.clone());
    }
    format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {} WHERE true {tail}",
        names.join(", "),
        values.join(", "),
        rows_of(pg, columns)
    )
}

/// A timestamp in a batch, written exactly as diesel binds one for SQLite
/// (`%F %T%.f`: the fraction with 0, 3, 6 or 9 digits, as needed), so that the text
/// compares with the timestamps diesel writes; PostgreSQL reads the same text.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timestamp(pub NaiveDateTime);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 29];
        match timestamp_text(self.0, &mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&self.0.format("%F %T%.f").to_string()),
        }
    }
}

/// The text of `t` in `buf` without chrono's format parser, for the years 0 to 9999
/// and no leap second (`None` for the others, which the caller formats with chrono).
fn timestamp_text(t: NaiveDateTime, buf: &mut [u8; 29]) -> Option<&str> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nano = t.nanosecond();
    if nano >= 1_000_000_000 {
        return None;
    }
    fn put(buf: &mut [u8], at: usize, value: u32, digits: usize) {
        let mut v = value;
        for i in (0..digits).rev() {
            // A digit: always below 10.
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
    put(buf, 0, year, 4);
    buf[4] = b'-';
    put(buf, 5, t.month(), 2);
    buf[7] = b'-';
    put(buf, 8, t.day(), 2);
    buf[10] = b' ';
    put(buf, 11, t.hour(), 2);
    buf[13] = b':';
    put(buf, 14, t.minute(), 2);
    buf[16] = b':';
    put(buf, 17, t.second(), 2);
    let len = if nano == 0 {
        19
    } else {
        buf[19] = b'.';
        if nano.is_multiple_of(1_000_000) {
            put(buf, 20, nano / 1_000_000, 3);
            23
        } else if nano.is_multiple_of(1_000) {
            put(buf, 20, nano / 1_000, 6);
            26
        } else {
            put(buf, 20, nano, 9);
            29
        }
    };
    std::str::from_utf8(&buf[..len]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn chrono_text(t: NaiveDateTime) -> String {
        t.format("%F %T%.f").to_string()
    }

    fn ours(t: NaiveDateTime) -> String {
        serde_json::to_value(Timestamp(t))
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    #[test]
    fn timestamps_are_written_as_diesel_writes_them_for_sqlite() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        let mut cases = Vec::new();
        for (date, h, mi, s) in [
            (day(2026, 12, 3), 8, 5, 9),
            (day(1999, 1, 1), 0, 0, 0),
            (day(9999, 12, 31), 23, 59, 59),
            (day(1, 2, 3), 4, 5, 6),
            (day(12345, 6, 7), 1, 2, 3),
            (day(-44, 3, 15), 12, 0, 0),
        ] {
            for nano in [
                0,
                1,
                999,
                1_000,
                120_000,
                123_456_000,
                500_000_000,
                7,
                999_999_999,
            ] {
                cases.push(date.and_hms_nano_opt(h, mi, s, nano).expect("a time"));
            }
        }
        // A leap second (chrono's nanosecond above 999,999,999).
        cases.push(
            day(2016, 12, 31)
                .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
                .expect("a leap second"),
        );
        for t in cases {
            assert_eq!(ours(t), chrono_text(t), "{t:?}");
        }
    }

    #[test]
    fn the_batch_sql_takes_each_column_by_position() {
        let columns: [Column; 2] = [("id", "text"), ("points", "int4")];
        let at = |pg| vec![("recorded_at", param(pg, 2, "timestamp"))];
        assert_eq!(
            insert_sql(false, "t", &columns, &at(false), "ON CONFLICT DO NOTHING"),
            "INSERT INTO t (id, points, recorded_at) SELECT v.id, v.points, ?2 FROM (SELECT \
             value ->> 0 AS id, value ->> 1 AS points FROM jsonb_each(?1)) AS v WHERE true ON \
             CONFLICT DO NOTHING"
        );
        assert_eq!(
            insert_sql(true, "t", &columns, &at(true), ""),
            "INSERT INTO t (id, points, recorded_at) SELECT v.id, v.points, $2::timestamp FROM \
             (SELECT (e ->> 0)::text AS id, (e ->> 1)::int4 AS points FROM \
             jsonb_array_elements($1::jsonb) AS e) AS v WHERE true "
        );
    }
}
