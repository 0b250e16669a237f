//! China Standard Time (+08:00), in which documents, letters and answers state times;
//! everything is stored in UTC. And the window every date or time a client sends must
//! lie in ([`EARLIEST_DATE`] to [`LATEST_DATE`]): a deadline in the year 9999 is a typo
//! or an attack, never a tender, and times outside any sane range break the arithmetic
//! and the formats downstream (validity periods, guarantee numbers, printed letters).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use thiserror::Error;

/// The first day a client may name (China time).
pub const EARLIEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("2000-01-01 is a date"),
};
/// The last day a client may name (China time).
pub const LATEST_DATE: NaiveDate = match NaiveDate::from_ymd_opt(2100, 12, 31) {
    Some(d) => d,
    None => panic!("2100-12-31 is a date"),
};

/// Why a date or time from a client was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TimeInputError {
    /// Not RFC 3339 with an offset.
    #[error("must be an RFC 3339 time with an offset, e.g. 2026-12-20T09:00:00+08:00")]
    NotRfc3339,
    /// Outside [`EARLIEST_DATE`]..=[`LATEST_DATE`].
    #[error("must lie between {EARLIEST_DATE} and {LATEST_DATE} (China time)")]
    OutsideWindow,
}

/// Whether a UTC time falls on a day (China time) inside the window.
pub fn check_window(utc: NaiveDateTime) -> Result<(), TimeInputError> {
    if (EARLIEST_DATE..=LATEST_DATE).contains(&china_date(utc)) {
        Ok(())
    } else {
        Err(TimeInputError::OutsideWindow)
    }
}

/// Parses a time a client sent: RFC 3339 with an offset, inside the window.
pub fn parse_client_time(text: &str) -> Result<DateTime<FixedOffset>, TimeInputError> {
    let time = DateTime::parse_from_rfc3339(text).map_err(|_| TimeInputError::NotRfc3339)?;
    check_window(time.naive_utc())?;
    Ok(time)
}

/// The day (China time) of a stored UTC time: what "today" means to the exchange.
pub fn china_date(utc: NaiveDateTime) -> NaiveDate {
    china().from_utc_datetime(&utc).date_naive()
}

/// The +08:00 offset.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("+08:00 is a valid offset"))
}

/// A stored UTC time as RFC 3339 in China time, to the second.
pub fn china_rfc3339(t: NaiveDateTime) -> String {
    china()
        .from_utc_datetime(&t)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_is_shown_eight_hours_later() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 11, 26)
            .and_then(|d| d.and_hms_opt(17, 30, 0))
            .expect("time");
        assert_eq!(china_rfc3339(t), "2026-11-27T01:30:00+08:00");
        assert_eq!(
            china_date(t),
            NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
        );
    }

    #[test]
    fn client_times_lie_in_the_window_by_china_date() {
        for ok in [
            "2026-12-20T09:00:00+08:00",
            "2000-01-01T00:00:00+08:00",
            "2100-12-31T23:59:59+08:00",
            // 16:00 UTC on the last day is midnight in China: the next day.
            "2100-12-31T15:59:59Z",
        ] {
            assert!(parse_client_time(ok).is_ok(), "{ok}");
        }
        for outside in [
            "9999-12-31T23:59:59+08:00",
            "0000-01-01T00:00:00Z",
            "1999-12-31T23:59:59+08:00",
            "2100-12-31T16:00:00Z",
            "2101-01-01T00:00:00+08:00",
            "1970-01-01T00:00:00Z",
        ] {
            assert_eq!(
                parse_client_time(outside),
                Err(TimeInputError::OutsideWindow),
                "{outside}"
            );
        }
        for garbage in [
            "",
            "2026-12-20",
            "2026-12-20T09:00:00",
            "tomorrow",
            "+10000-01-01T00:00:00Z",
        ] {
            assert_eq!(
                parse_client_time(garbage),
                Err(TimeInputError::NotRfc3339),
                "{garbage}"
            );
        }
        assert_eq!(
            TimeInputError::OutsideWindow.to_string(),
            "must lie between 2000-01-01 and 2100-12-31 (China time)"
        );
    }
}
