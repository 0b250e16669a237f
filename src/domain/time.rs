//! China Standard Time (+08:00), in which documents, letters and answers state times;
//! everything is stored in UTC.

use chrono::{FixedOffset, NaiveDateTime, TimeZone};

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
    }
}
