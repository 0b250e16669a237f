//! Business days in mainland China (工作日): Monday to Friday, minus the public holidays,
//! plus the weekend days the State Council declares working days (调休上班).
//!
//! The holidays move every year (lunar festivals, and the State Council rearranges
//! weekends around them), so they are data, not a formula: the schedules published so far
//! are embedded from `calendar/cn_holidays.csv`, and an operator adds a newly published
//! year in the same format with [`Calendar::with_additions`] without a new release.
//!
//! A date the data does not list is a business day if it is Monday to Friday. For a year
//! with no published schedule (see [`Calendar::covered_years`]) that means weekends only:
//! deadlines in such a year may fall on a public holiday, so tools should warn about it.
//!
//! Business days are China dates: an instant is placed on the calendar in China time
//! (+08:00), whatever the UTC date.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Weekday};
use thiserror::Error;

use super::string_enum::{string_enum, ParseEnumError};
use super::time::china;

/// The schedules embedded in the binary (2020 through 2026).
const BUILTIN_DATA: &str = include_str!("calendar/cn_holidays.csv");

/// The column header the data may carry; skipped when present.
const HEADER: &str = "date,kind,name";

string_enum! {
    /// What the calendar says about a listed date.
    pub enum DayKind ("calendar day kind") {
        /// An official day off (法定节假日, or a day taken off with it: 调休放假).
        Holiday => "holiday",
        /// A Saturday or Sunday that is an official working day (调休上班).
        Workday => "workday",
    }
}

/// A date the calendar lists, with the holiday period it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedDay {
    /// Day off or working weekend day.
    pub kind: DayKind,
    /// The holiday period as the State Council names it, e.g. "春节"; may be empty in
    /// operator additions.
    pub name: String,
}

/// A line of calendar data that was refused. Lines are numbered from 1 in the text given.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CalendarError {
    /// Fewer than two comma-separated fields.
    #[error("line {line}: expected date,kind,name (e.g. 2027-10-01,holiday,国庆节)")]
    MissingField {
        /// 1-based line number.
        line: usize,
    },
    /// The first field is not a `YYYY-MM-DD` date.
    #[error("line {line}: {value:?} is not a date; write YYYY-MM-DD")]
    BadDate {
        /// 1-based line number.
        line: usize,
        /// The refused text.
        value: String,
    },
    /// The second field is neither `holiday` nor `workday`.
    #[error("line {line}: {source}")]
    BadKind {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        source: ParseEnumError,
    },
    /// A `workday` on Monday to Friday: it would change nothing, so the date is most
    /// likely mistyped.
    #[error("line {line}: {date} is a {}; only a Saturday or Sunday can be an adjusted working day", .date.format("%A"))]
    WorkdayNotWeekend {
        /// 1-based line number.
        line: usize,
        /// The refused date.
        date: NaiveDate,
    },
    /// The date is already listed with the other kind (here or in the calendar extended).
    #[error("line {line}: {date} is already listed as a {existing}; a date cannot be both a holiday and a working day")]
    Conflict {
        /// 1-based line number.
        line: usize,
        /// The date listed twice.
        date: NaiveDate,
        /// The kind it already has.
        existing: DayKind,
    },
}

/// The PRC business-day calendar: listed holidays and adjusted working days over the
/// Monday-to-Friday week.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    days: BTreeMap<NaiveDate, ListedDay>,
}

impl Calendar {
    /// The calendar of the schedules embedded in the binary (2020 through 2026, from the
    /// State Council notices).
    pub fn builtin() -> &'static Calendar {
        static BUILTIN: OnceLock<Calendar> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            Calendar::weekends_only()
                .with_additions(BUILTIN_DATA)
                // A unit test parses the embedded data, so this cannot fail in a build
                // whose tests pass.
                .unwrap_or_else(|e| panic!("embedded holiday data is invalid: {e}"))
        })
    }

    /// A calendar with no holidays listed: Monday to Friday are business days. The
    /// fallback for years without data, and a base for tests.
    pub fn weekends_only() -> Calendar {
        Calendar::default()
    }

    /// This calendar plus the dates in `text`, in the format of the embedded data: one
    /// `date,kind,name` a line (`2027-10-01,holiday,国庆节`), `#` comments and blank lines
    /// ignored, the header line optional.
    ///
    /// Meant for the operator to add a year the State Council has just published. Listing
    /// a date again with the same kind is harmless (the first name is kept); a date listed
    /// both as holiday and working day, or a working day on Monday to Friday, is refused
    /// naming the line. Nothing is added when any line is refused.
    pub fn with_additions(&self, text: &str) -> Result<Calendar, CalendarError> {
        let mut days = self.days.clone();
        // A spreadsheet may save the file with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') || content == HEADER {
                continue;
            }
            let (date, day) = parse_line(line, content)?;
            match days.get(&date) {
                Some(existing) if existing.kind != day.kind => {
                    return Err(CalendarError::Conflict {
                        line,
                        date,
                        existing: existing.kind,
                    });
                }
                Some(_) => {}
                None => {
                    days.insert(date, day);
                }
            }
        }
        Ok(Calendar { days })
    }

    /// What the calendar lists for a date, if anything.
    pub fn listed(&self, date: NaiveDate) -> Option<&ListedDay> {
        self.days.get(&date)
    }

    /// Is `date` (a China date) a business day? A listed holiday is not, a listed working
    /// day is, any other date is if it is Monday to Friday.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        match self.days.get(&date).map(|d| d.kind) {
            Some(DayKind::Holiday) => false,
            Some(DayKind::Workday) => true,
            None => !is_weekend(date),
        }
    }

    /// `start` (UTC) plus `days` business days, at the same time of day.
    ///
    /// The start is placed on the calendar in China time; the start date itself never
    /// counts, each following China date counts if it is a business day, and the result
    /// is that last counted date at the start's time of day, back in UTC. So a claim filed
    /// the working day before the National Day holiday is due `days` working days after
    /// the holiday. Zero days returns `start`. Saturates at the end of chrono's range.
    pub fn add_business_days(&self, start: NaiveDateTime, days: u32) -> NaiveDateTime {
        let mut date = china().from_utc_datetime(&start).date_naive();
        let mut stepped: i64 = 0;
        let mut left = days;
        while left > 0 {
            let Some(next) = date.succ_opt() else {
                return NaiveDateTime::MAX;
            };
            date = next;
            stepped += 1;
            if self.is_business_day(date) {
                left -= 1;
            }
        }
        // The offset is fixed, so whole days added in China time are whole days in UTC.
        start
            .checked_add_signed(Duration::days(stepped))
            .unwrap_or(NaiveDateTime::MAX)
    }

    /// The years whose schedule the calendar holds, ascending: those listing 1 January as
    /// a holiday, since every State Council schedule starts with New Year's Day (元旦).
    /// Other years count Monday to Friday only; tools warn when a date falls in one.
    pub fn covered_years(&self) -> Vec<i32> {
        self.days
            .iter()
            .filter(|(date, day)| {
                date.month() == 1 && date.day() == 1 && day.kind == DayKind::Holiday
            })
            .map(|(date, _)| date.year())
            .collect()
    }

    /// Does the calendar hold the schedule of `year`? See [`Calendar::covered_years`].
    pub fn covers_year(&self, year: i32) -> bool {
        NaiveDate::from_ymd_opt(year, 1, 1)
            .and_then(|d| self.days.get(&d))
            .is_some_and(|d| d.kind == DayKind::Holiday)
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

fn parse_line(line: usize, content: &str) -> Result<(NaiveDate, ListedDay), CalendarError> {
    let mut fields = content.splitn(3, ',').map(str::trim);
    let (Some(date_text), Some(kind_text)) = (fields.next(), fields.next()) else {
        return Err(CalendarError::MissingField { line });
    };
    let name = fields.next().unwrap_or_default().to_owned();
    let date =
        NaiveDate::parse_from_str(date_text, "%Y-%m-%d").map_err(|_| CalendarError::BadDate {
            line,
            value: date_text.to_owned(),
        })?;
    let kind: DayKind = kind_text
        .parse()
        .map_err(|source| CalendarError::BadKind { line, source })?;
    if kind == DayKind::Workday && !is_weekend(date) {
        return Err(CalendarError::WorkdayNotWeekend { line, date });
    }
    Ok((date, ListedDay { kind, name }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    /// A China wall-clock time as the stored UTC instant.
    fn china_time(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        let local = date(y, m, d).and_hms_opt(h, min, 0).expect("valid time");
        local - Duration::hours(8)
    }

    fn builtin() -> &'static Calendar {
        Calendar::builtin()
    }

    // --- The embedded data --------------------------------------------------------

    #[test]
    fn embedded_data_parses_and_covers_2020_through_2026() {
        let calendar = Calendar::weekends_only()
            .with_additions(BUILTIN_DATA)
            .expect("embedded data parses");
        assert_eq!(calendar.covered_years(), (2020..=2026).collect::<Vec<_>>());
        assert!(builtin().covers_year(2025));
        assert!(!builtin().covers_year(2019));
        assert!(!builtin().covers_year(2027));
    }

    #[test]
    fn every_listed_workday_is_a_weekend_day_and_every_day_is_named() {
        let workdays: Vec<_> = builtin()
            .days
            .iter()
            .filter(|(_, d)| d.kind == DayKind::Workday)
            .collect();
        assert!(workdays.len() > 30, "{} workdays", workdays.len());
        for (date, _) in workdays {
            assert!(is_weekend(*date), "{date} is listed as a workday");
        }
        for (date, day) in &builtin().days {
            assert!(!day.name.is_empty(), "{date} has no name");
        }
    }

    /// Each adjusted working day serves a holiday period of the same name close by: a
    /// workday far from its holiday, or named for another, is a data-entry slip.
    #[test]
    fn every_workday_serves_a_holiday_of_its_name_within_two_weeks() {
        for (day, listed) in builtin()
            .days
            .iter()
            .filter(|(_, d)| d.kind == DayKind::Workday)
        {
            let near = (-14..=14).any(|offset| {
                builtin()
                    .listed(*day + Duration::days(offset))
                    .is_some_and(|d| d.kind == DayKind::Holiday && d.name == listed.name)
            });
            assert!(
                near,
                "workday {day} ({}) has no holiday near it",
                listed.name
            );
        }
    }

    /// Weekday holidays minus working weekend days is the number of statutory days off
    /// (法定假日) a year: 11 until 2024, 13 since the 2024 revision added New Year's Eve
    /// and 2 May. 2020 adds the two days of the COVID-19 Spring Festival extension
    /// (30 and 31 January; 1 and 2 February were a weekend).
    #[test]
    fn each_year_grants_its_statutory_number_of_days_off() {
        let expected = [
            (2020, 13),
            (2021, 11),
            (2022, 11),
            (2023, 11),
            (2024, 11),
            (2025, 13),
            (2026, 13),
        ];
        for (year, days_off) in expected {
            let net: i32 = builtin()
                .days
                .iter()
                .filter(|(date, _)| date.year() == year)
                .map(|(date, day)| match day.kind {
                    DayKind::Holiday if !is_weekend(*date) => 1,
                    DayKind::Holiday => 0,
                    DayKind::Workday => -1,
                })
                .sum();
            assert_eq!(net, days_off, "{year}");
        }
    }

    #[test]
    fn national_day_2025_is_as_the_notice_states() {
        // 10月1日至8日放假调休，共8天。9月28日（周日）、10月11日（周六）上班。
        for d in 1..=8 {
            assert!(!builtin().is_business_day(date(2025, 10, d)), "Oct {d}");
            assert_eq!(
                builtin().listed(date(2025, 10, d)).map(|l| l.kind),
                Some(DayKind::Holiday)
            );
        }
        assert!(builtin().is_business_day(date(2025, 9, 28)));
        assert!(builtin().is_business_day(date(2025, 10, 11)));
        assert!(!builtin().is_business_day(date(2025, 10, 12)));
        assert!(builtin().is_business_day(date(2025, 10, 9)));
    }

    // --- Business-day arithmetic on fixed dates -----------------------------------

    #[test]
    fn a_claim_filed_before_national_day_is_due_after_it_counting_the_working_saturday() {
        // Tue 30 Sep 2025 + 5: Thu 9, Fri 10, Sat 11 (调休上班), Mon 13, Tue 14 October.
        let filed = china_time(2025, 9, 30, 10, 0);
        assert_eq!(
            builtin().add_business_days(filed, 5),
            china_time(2025, 10, 14, 10, 0)
        );
        // Without the holiday data the same claim would be due on Tue 7 October, in the
        // middle of the holiday.
        assert_eq!(
            Calendar::weekends_only().add_business_days(filed, 5),
            china_time(2025, 10, 7, 10, 0)
        );
    }

    #[test]
    fn business_days_are_counted_on_china_dates() {
        // 01:00 on 1 October in China is 17:00 on 30 September in UTC. Counting from the
        // UTC date would end a day late (01:00 on the 15th in China); counting from the
        // China date gives 9, 10, 11, 13, 14 October.
        let filed = china_time(2025, 10, 1, 1, 0);
        assert_eq!(filed.date(), date(2025, 9, 30));
        assert_eq!(
            builtin().add_business_days(filed, 5),
            china_time(2025, 10, 14, 1, 0)
        );
    }

    #[test]
    fn spring_festival_2025_and_its_working_saturday() {
        // 1月28日至2月4日放假调休，共8天。1月26日（周日）、2月8日（周六）上班。
        // Mon 27 Jan + 5: Wed 5, Thu 6, Fri 7, Sat 8 (调休上班), Mon 10 February.
        assert!(builtin().is_business_day(date(2025, 1, 26)));
        assert_eq!(
            builtin().add_business_days(china_time(2025, 1, 27, 16, 30), 5),
            china_time(2025, 2, 10, 16, 30)
        );
    }

    #[test]
    fn spring_festival_2026_nine_days_off() {
        // 2月15日至23日放假调休，共9天。2月14日（周六）、2月28日（周六）上班。
        // Fri 13 Feb + 5: Sat 14 (调休上班), Tue 24, Wed 25, Thu 26, Fri 27 February.
        assert_eq!(
            builtin().add_business_days(china_time(2026, 2, 13, 9, 0), 5),
            china_time(2026, 2, 27, 9, 0)
        );
        assert_eq!(
            builtin().add_business_days(china_time(2026, 2, 13, 9, 0), 1),
            china_time(2026, 2, 14, 9, 0)
        );
    }

    #[test]
    fn across_the_new_year() {
        // 2026: 1月1日至3日放假调休，共3天。1月4日（周日）上班.
        // Wed 31 Dec 2025 + 5: Sun 4, Mon 5, Tue 6, Wed 7, Thu 8 January.
        assert_eq!(
            builtin().add_business_days(china_time(2025, 12, 31, 11, 0), 5),
            china_time(2026, 1, 8, 11, 0)
        );
        // 2023's New Year holiday began on Sat 31 Dec 2022 and ended on Mon 2 Jan.
        assert_eq!(
            builtin().add_business_days(china_time(2022, 12, 30, 11, 0), 1),
            china_time(2023, 1, 3, 11, 0)
        );
    }

    #[test]
    fn zero_days_is_the_start_itself_even_on_a_holiday() {
        let start = china_time(2025, 10, 3, 12, 0);
        assert_eq!(builtin().add_business_days(start, 0), start);
    }

    #[test]
    fn a_year_without_data_counts_monday_to_friday() {
        assert!(!builtin().covers_year(2040));
        // Mon 1 Oct 2040 would be National Day, but 2040 has no schedule.
        assert!(builtin().is_business_day(date(2040, 10, 1)));
        assert_eq!(
            builtin().add_business_days(china_time(2040, 9, 28, 9, 0), 1),
            china_time(2040, 10, 1, 9, 0)
        );
    }

    #[test]
    fn the_end_of_time_saturates() {
        let last = NaiveDateTime::MAX - Duration::days(1);
        assert_eq!(builtin().add_business_days(last, 10), NaiveDateTime::MAX);
    }

    // --- Operator additions -----------------------------------------------------------

    const SCHEDULE_2040: &str = "\u{feff}# a made-up schedule for the tests\r\n\
        date,kind,name\r\n\
        2040-01-01,holiday,元旦\r\n\
        \r\n\
        2040-09-29,workday,国庆节\r\n\
        2040-10-01,holiday,国庆节\r\n\
        2040-10-02, holiday ,国庆节\r\n";

    #[test]
    fn an_operator_adds_a_year() {
        let calendar = builtin().with_additions(SCHEDULE_2040).expect("parses");
        assert!(calendar.covered_years().contains(&2040));
        assert!(!calendar.is_business_day(date(2040, 10, 1)));
        assert!(calendar.is_business_day(date(2040, 9, 29)));
        assert_eq!(
            calendar.listed(date(2040, 10, 2)),
            Some(&ListedDay {
                kind: DayKind::Holiday,
                name: "国庆节".into()
            })
        );
        // The built-in years are kept.
        assert!(!calendar.is_business_day(date(2025, 10, 1)));
        // Fri 28 Sep + 2: Sat 29 (调休上班), Wed 3 October.
        assert_eq!(
            calendar.add_business_days(china_time(2040, 9, 28, 9, 0), 2),
            china_time(2040, 10, 3, 9, 0)
        );
    }

    #[test]
    fn relisting_a_date_with_the_same_kind_is_harmless() {
        let calendar = builtin()
            .with_additions("2025-10-01,holiday,国庆\n2025-10-01,holiday,\n")
            .expect("same kind");
        assert_eq!(&calendar, builtin());
    }

    #[test]
    fn refused_lines_are_named() {
        let cases = [
            ("2040-10-01\n", CalendarError::MissingField { line: 1 }),
            (
                "# c\n2040-13-01,holiday,x\n",
                CalendarError::BadDate {
                    line: 2,
                    value: "2040-13-01".into(),
                },
            ),
            (
                "2040-10-01,workday,x\n",
                CalendarError::WorkdayNotWeekend {
                    line: 1,
                    date: date(2040, 10, 1),
                },
            ),
            // Sat 4 Oct 2025 is inside the built-in National Day holiday.
            (
                "\n\n2025-10-04,workday,国庆节\n",
                CalendarError::Conflict {
                    line: 3,
                    date: date(2025, 10, 4),
                    existing: DayKind::Holiday,
                },
            ),
            // A conflict within the added text itself.
            (
                "2040-09-29,workday,a\n2040-09-29,holiday,a\n",
                CalendarError::Conflict {
                    line: 2,
                    date: date(2040, 9, 29),
                    existing: DayKind::Workday,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(builtin().with_additions(text), Err(expected), "{text:?}");
        }
        let err = builtin()
            .with_additions("2040-10-01,off,x")
            .expect_err("unknown kind");
        assert!(
            matches!(err, CalendarError::BadKind { line: 1, .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "line 1: unknown calendar day kind \"off\"; expected one of: holiday, workday"
        );
        assert_eq!(
            builtin()
                .with_additions("2040-10-01,workday,x")
                .expect_err("weekday")
                .to_string(),
            "line 1: 2040-10-01 is a Monday; only a Saturday or Sunday can be an adjusted working day"
        );
    }

    // --- Properties ---------------------------------------------------------------------

    /// The rule before holidays were modelled, kept here as the reference for
    /// `weekends_only`.
    fn monday_to_friday(at: NaiveDateTime, days: u32) -> NaiveDateTime {
        let mut local = china().from_utc_datetime(&at);
        let mut left = days;
        while left > 0 {
            local += Duration::days(1);
            if !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) {
                left -= 1;
            }
        }
        local.naive_utc()
    }

    fn instant() -> impl Strategy<Value = NaiveDateTime> {
        // 2019 through 2027: the covered years and one on each side.
        (1_546_300_800i64..1_830_297_600).prop_map(|secs| {
            chrono::DateTime::from_timestamp(secs, 0)
                .expect("in range")
                .naive_utc()
        })
    }

    proptest! {
        #[test]
        fn weekends_only_is_the_monday_to_friday_rule(start in instant(), days in 0u32..40) {
            prop_assert_eq!(
                Calendar::weekends_only().add_business_days(start, days),
                monday_to_friday(start, days)
            );
        }

        #[test]
        fn the_due_time_is_a_later_business_day_at_the_same_time(start in instant(), days in 1u32..40) {
            let due = builtin().add_business_days(start, days);
            prop_assert!(due > start);
            prop_assert_eq!(due.time(), start.time());
            let due_date = china().from_utc_datetime(&due).date_naive();
            prop_assert!(builtin().is_business_day(due_date));
            // Each business day counted is a distinct later date.
            prop_assert!(due >= start + Duration::days(i64::from(days)));
        }

        #[test]
        fn adding_in_two_steps_is_adding_once(start in instant(), a in 0u32..20, b in 0u32..20) {
            let calendar = builtin();
            prop_assert_eq!(
                calendar.add_business_days(calendar.add_business_days(start, a), b),
                calendar.add_business_days(start, a + b)
            );
        }
    }
}
