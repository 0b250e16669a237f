//! Demands for payment under a bid bond (索赔), after URDG 758: why the beneficiary
//! claims, and by when the issuer must decide.

use chrono::NaiveDateTime;

use super::calendar::Calendar;
use super::string_enum::string_enum;

string_enum! {
    /// Why the beneficiary demands payment (索赔理由): the bidder's breaches that forfeit a
    /// bid bond under the tender law, plus `other` for one the statement describes.
    pub enum ClaimReason ("claim reason") {
        /// The bidder withdrew its bid after the bid deadline, within the bid validity
        /// period (投标截止后撤销投标文件).
        WithdrewAfterDeadline => "withdrew_after_deadline",
        /// Awarded the contract, the bidder refused to sign it (中标后拒绝签订合同).
        RefusedToSignContract => "refused_to_sign_contract",
        /// Awarded the contract, the bidder refused to provide the performance bond
        /// (拒不提交履约保证金).
        RefusedPerformanceBond => "refused_performance_bond",
        /// The bid rested on false materials (提供虚假材料).
        FalseMaterials => "false_materials",
        /// The bidder colluded with others or the tenderee (串通投标).
        Collusion => "collusion",
        /// Another breach, described in the claim's statement (其他).
        Other => "other",
    }
}

/// Business days the issuer has to decide a claim, from filing.
pub const DECISION_BUSINESS_DAYS: u32 = 5;

/// When the issuer must have decided a claim filed at `filed_at` (UTC):
/// [`DECISION_BUSINESS_DAYS`] business days later on the PRC calendar, at the same time
/// of day. Past it, an undecided claim is overdue.
pub fn decide_by(calendar: &Calendar, filed_at: NaiveDateTime) -> NaiveDateTime {
    calendar.add_business_days(filed_at, DECISION_BUSINESS_DAYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    /// The values the exchange has accepted since claims began; stored in
    /// `claims.reason_code` and sent by API clients, so they must never change.
    const ACCEPTED: [&str; 6] = [
        "withdrew_after_deadline",
        "refused_to_sign_contract",
        "refused_performance_bond",
        "false_materials",
        "collusion",
        "other",
    ];

    #[test]
    fn the_reasons_are_exactly_the_accepted_texts() {
        let texts: Vec<&str> = ClaimReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(texts, ACCEPTED);
        for text in ACCEPTED {
            let reason: ClaimReason = text.parse().expect("accepted");
            assert_eq!(reason.to_string(), text);
            assert_eq!(
                serde_json::to_value(reason).expect("serializes"),
                serde_json::json!(text)
            );
            assert_eq!(
                serde_json::from_value::<ClaimReason>(serde_json::json!(text)).expect("parses"),
                reason
            );
        }
    }

    #[test]
    fn other_texts_are_refused_listing_the_accepted_ones() {
        for bad in ["", "Other", "collusion ", "withdrew", "串标"] {
            let err = bad.parse::<ClaimReason>().expect_err("refused");
            assert_eq!(err.value, bad);
            assert_eq!(err.expected, ACCEPTED.join(", "));
        }
        assert_eq!(
            "late"
                .parse::<ClaimReason>()
                .expect_err("refused")
                .to_string(),
            "unknown claim reason \"late\"; expected one of: withdrew_after_deadline, \
             refused_to_sign_contract, refused_performance_bond, false_materials, collusion, other"
        );
    }

    #[test]
    fn a_claim_filed_before_national_day_2025_is_decided_after_it() {
        // Filed 10:00 China time on Tue 30 Sep 2025; due 10:00 on Tue 14 Oct 2025.
        let time = |d: u32, m: u32| {
            NaiveDate::from_ymd_opt(2025, m, d)
                .and_then(|d| d.and_hms_opt(2, 0, 0))
                .expect("valid time")
        };
        assert_eq!(decide_by(Calendar::builtin(), time(30, 9)), time(14, 10));
    }
}
