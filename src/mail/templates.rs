//! The mails the exchange sends, one typed context and one function per kind. Each
//! renders `templates/mail/<kind>.txt` and `.html` (askama; the HTML part is escaped)
//! into an [`outbox::Mail`](super::outbox::Mail) ready for
//! [`outbox::enqueue`](super::outbox::enqueue).
//!
//! Callers pass every value already formatted for people (amounts such as
//! `"¥50,000.00"`, dates such as `"2027-03-31"`) and full links built from the public
//! base URL: the templates only place them. Subjects are bilingual, Chinese first, and
//! carry no names or free text, so nothing a user typed ends up in a mail header.

use askama::Template;

use super::outbox::Mail;

/// New applications for an issuer to review (收到保函申请), collected into one mail.
#[derive(Debug, Clone)]
pub struct ApplicationsWaiting {
    /// The issuer (or its staff member) being written to.
    pub recipient_name: String,
    pub applications: Vec<WaitingApplication>,
}

/// One application in an issuer's digest.
#[derive(Debug, Clone)]
pub struct WaitingApplication {
    pub application_ref: String,
    pub enterprise_name: String,
    pub project_name: String,
    pub section_name: String,
    pub bond_amount: String,
    pub bid_deadline: String,
    /// Where the issuer reviews the application.
    pub link: String,
}

/// A guarantee was issued (保函已出具); sent to the enterprise and to the agency.
#[derive(Debug, Clone)]
pub struct GuaranteeIssued {
    pub recipient_name: String,
    pub guarantee_number: String,
    pub issuer_name: String,
    pub enterprise_name: String,
    pub project_name: String,
    pub section_name: String,
    pub amount: String,
    pub valid_until: String,
    /// The public verification page of the guarantee.
    pub verify_link: String,
}

/// A claim was filed against a guarantee (保函索赔); sent to the issuer and the
/// enterprise.
#[derive(Debug, Clone)]
pub struct ClaimFiled {
    pub recipient_name: String,
    pub guarantee_number: String,
    /// The agency or tenderee that claims.
    pub claimant_name: String,
    pub enterprise_name: String,
    pub project_name: String,
    pub claim_amount: String,
    pub reason: String,
    pub link: String,
}

/// How the issuer decided a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    Paid,
    Rejected,
}

impl ClaimOutcome {
    /// The outcome in Chinese, for the text.
    pub fn zh(&self) -> &'static str {
        match self {
            ClaimOutcome::Paid => "已赔付",
            ClaimOutcome::Rejected => "已拒绝",
        }
    }

    /// The outcome in English.
    pub fn en(&self) -> &'static str {
        match self {
            ClaimOutcome::Paid => "paid",
            ClaimOutcome::Rejected => "rejected",
        }
    }
}

/// The issuer decided a claim (索赔已处理).
#[derive(Debug, Clone)]
pub struct ClaimDecided {
    pub recipient_name: String,
    pub guarantee_number: String,
    pub outcome: ClaimOutcome,
    pub claim_amount: String,
    /// What was paid, when it was.
    pub paid_amount: Option<String>,
    /// The issuer's explanation, if it gave one.
    pub note: Option<String>,
    pub link: String,
}

/// A guarantee was released after the award (保函已释放).
#[derive(Debug, Clone)]
pub struct GuaranteeReleased {
    pub recipient_name: String,
    pub guarantee_number: String,
    pub project_name: String,
    pub released_by: String,
    pub released_on: String,
    pub link: String,
}

/// How long until something runs out, as a mail says it: whole days when a day or more
/// is left, hours below that, never "0 days" for what ends tomorrow morning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeLeft(chrono::TimeDelta);

impl TimeLeft {
    /// The time from `at` until `until` (none once it has passed).
    pub fn between(at: chrono::NaiveDateTime, until: chrono::NaiveDateTime) -> TimeLeft {
        TimeLeft((until - at).max(chrono::TimeDelta::zero()))
    }

    /// In English: `3 days`, `1 day`, `23 hours`, `1 hour`, `less than an hour`.
    pub fn en(&self) -> String {
        match (self.0.num_days(), self.0.num_hours()) {
            (1, _) => "1 day".into(),
            (d, _) if d > 1 => format!("{d} days"),
            (_, 1) => "1 hour".into(),
            (_, h) if h > 1 => format!("{h} hours"),
            _ => "less than an hour".into(),
        }
    }

    /// In Chinese: `3天`, `23小时`, `不到1小时`.
    pub fn zh(&self) -> String {
        match (self.0.num_days(), self.0.num_hours()) {
            (d, _) if d >= 1 => format!("{d}天"),
            (_, h) if h >= 1 => format!("{h}小时"),
            _ => "不到1小时".into(),
        }
    }
}

/// A guarantee is about to expire (保函即将到期).
#[derive(Debug, Clone)]
pub struct GuaranteeExpiring {
    pub recipient_name: String,
    pub guarantee_number: String,
    pub project_name: String,
    pub valid_until: String,
    pub time_left: TimeLeft,
    pub link: String,
}

/// An issuer's registered signing certificate runs out soon (签名证书即将到期).
#[derive(Debug, Clone)]
pub struct CertificateExpiring {
    pub recipient_name: String,
    pub subject: String,
    pub serial: String,
    pub fingerprint: String,
    /// notAfter, China time.
    pub not_after: String,
    pub time_left: TimeLeft,
}

/// What moved a credit level: a record of a category arriving, cancelled or lapsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditCause {
    NewRecord,
    Cancelled,
    Lapsed,
}

impl CreditCause {
    /// The reason line of the mail, both languages, naming the record's category.
    pub fn reason(&self, category_zh: &str, category_en: &str) -> String {
        let (zh, en) = match self {
            CreditCause::NewRecord => ("新增记录", "New record"),
            CreditCause::Cancelled => ("撤销记录", "Record cancelled"),
            CreditCause::Lapsed => ("记录到期", "Record lapsed"),
        };
        format!("{zh}：{category_zh} / {en}: {category_en}")
    }
}

/// A person's or enterprise's credit level changed (信用等级变更).
#[derive(Debug, Clone)]
pub struct CreditLevelChanged {
    pub recipient_name: String,
    pub old_level: String,
    pub new_level: String,
    pub score: String,
    pub reason: Option<String>,
    pub link: String,
}

/// A change to a bond or an application its party must know of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuaranteeChange {
    /// The project's bid deadline moved (延标), to the bidder.
    Postponed,
    /// A postponement left a bond short: its issuer must sign an amendment.
    AmendmentToSign,
    /// The issuer signed the amendment, to the bidder.
    AmendmentSigned,
    /// The issuer revoked the bond, to the bidder.
    Revoked,
    /// The issuer signed a reduction of the amount: the agency accepts or refuses it.
    ReductionToAccept,
    /// The agency accepted a reduction: it is in force (to the issuer and the bidder).
    ReductionAccepted,
    /// The agency refused a reduction: the amount stays (to the issuer).
    ReductionRefused,
}

impl GuaranteeChange {
    pub fn title(&self) -> &'static str {
        match self {
            GuaranteeChange::Postponed => "项目延期 Bid deadline postponed",
            GuaranteeChange::AmendmentToSign => "保函待修改 Amendment to sign",
            GuaranteeChange::AmendmentSigned => "保函已修改 Amendment signed",
            GuaranteeChange::Revoked => "保函已撤销 Guarantee revoked",
            GuaranteeChange::ReductionToAccept => "保函减额待确认 Reduction to accept",
            GuaranteeChange::ReductionAccepted => "保函减额已生效 Reduction accepted",
            GuaranteeChange::ReductionRefused => "保函减额被拒绝 Reduction refused",
        }
    }

    pub fn zh(&self) -> &'static str {
        match self {
            GuaranteeChange::Postponed => {
                "项目投标截止时间已延后，保函有效期将随之延长（在保保函由出具机构签署修改版本）。"
            }
            GuaranteeChange::AmendmentToSign => {
                "项目延期，该保函须签署延长有效期的修改版本，请尽快签署。"
            }
            GuaranteeChange::AmendmentSigned => "出具机构已签署保函修改版本，有效期已延长。",
            GuaranteeChange::Revoked => "出具机构已撤销该保函，保函不再有效。",
            GuaranteeChange::ReductionToAccept => {
                "出具机构提出并签署了降低担保金额的保函修改，须经受益人一方接受方生效，请接受或拒绝。"
            }
            GuaranteeChange::ReductionAccepted => {
                "受益人一方已接受保函减额修改，新的担保金额自即日起生效，减额函可下载。"
            }
            GuaranteeChange::ReductionRefused => {
                "受益人一方拒绝了保函减额修改，保函仍按原金额有效。"
            }
        }
    }

    pub fn en(&self) -> &'static str {
        match self {
            GuaranteeChange::Postponed => {
                "The bid deadline of the project was postponed; the validity follows \
                 (bonds in force get an amendment from their issuer)."
            }
            GuaranteeChange::AmendmentToSign => {
                "The project was postponed: this guarantee needs an amendment with the \
                 longer validity, for you to sign."
            }
            GuaranteeChange::AmendmentSigned => {
                "The issuer signed the amendment: the guarantee's validity is extended."
            }
            GuaranteeChange::Revoked => "The issuer revoked this guarantee: it is no longer valid.",
            GuaranteeChange::ReductionToAccept => {
                "The issuer proposed and signed an amendment reducing the amount of this \
                 guarantee; it takes effect only if you accept it for the beneficiary. \
                 Accept or refuse it."
            }
            GuaranteeChange::ReductionAccepted => {
                "The beneficiary's side accepted the reduction: the new amount is in force, \
                 and the reduction letter can be downloaded."
            }
            GuaranteeChange::ReductionRefused => {
                "The beneficiary's side refused the reduction: the guarantee stays in force \
                 for its amount."
            }
        }
    }
}

/// A bond or application changed (postponement, amendment, revocation).
#[derive(Debug, Clone)]
pub struct GuaranteeChanged {
    pub recipient_name: String,
    pub change: GuaranteeChange,
    /// The guarantee number, or the application's reference before issue.
    pub reference: String,
    pub project_name: String,
    /// What changed, formatted (a new deadline or validity, a reason).
    pub detail: Option<String>,
    pub link: String,
}

/// Defines `pub fn $name(to, &Context) -> Result<Mail, askama::Error>` rendering the
/// text and HTML templates of one kind with the context as `m`.
macro_rules! mail_kind {
    ($(#[$doc:meta])* $name:ident($ctx:ty), $text:tt, $html:tt, |$m:ident| $subject:expr) => {
        $(#[$doc])*
        pub fn $name(to: &str, $m: &$ctx) -> Result<Mail, askama::Error> {
            #[derive(Template)]
            #[template(path = $text)]
            struct Text<'a> {
                m: &'a $ctx,
            }
            #[derive(Template)]
            #[template(path = $html)]
            struct Html<'a> {
                m: &'a $ctx,
            }
            Ok(Mail {
                to_address: to.to_owned(),
                subject: one_line(&$subject),
                text_body: Text { m: $m }.render()?,
                html_body: Html { m: $m }.render()?,
            })
        }
    };
}

mail_kind!(
    /// To the issuer: applications wait for its review.
    applications_waiting(ApplicationsWaiting),
    "mail/applications_waiting.txt",
    "mail/applications_waiting.html",
    |m| format!("收到保函申请 New applications: {}", m.applications.len())
);

mail_kind!(
    /// To the enterprise and to the agency: the guarantee is issued.
    guarantee_issued(GuaranteeIssued),
    "mail/guarantee_issued.txt",
    "mail/guarantee_issued.html",
    |m| format!("保函已出具 Guarantee issued: {}", m.guarantee_number)
);

mail_kind!(
    /// To the issuer and to the enterprise: a claim was filed.
    claim_filed(ClaimFiled),
    "mail/claim_filed.txt",
    "mail/claim_filed.html",
    |m| format!("保函索赔 Claim filed: {}", m.guarantee_number)
);

mail_kind!(
    /// To the claimant and the enterprise: the issuer decided the claim.
    claim_decided(ClaimDecided),
    "mail/claim_decided.txt",
    "mail/claim_decided.html",
    |m| format!(
        "索赔{} Claim {}: {}",
        m.outcome.zh(),
        m.outcome.en(),
        m.guarantee_number
    )
);

mail_kind!(
    /// To the enterprise and the issuer: the guarantee was released.
    guarantee_released(GuaranteeReleased),
    "mail/guarantee_released.txt",
    "mail/guarantee_released.html",
    |m| format!("保函已释放 Guarantee released: {}", m.guarantee_number)
);

mail_kind!(
    /// To a bidder or an issuer: a postponement, an amendment, a revocation.
    guarantee_changed(GuaranteeChanged),
    "mail/guarantee_changed.txt",
    "mail/guarantee_changed.html",
    |m| format!("{}: {}", m.change.title(), m.reference)
);

mail_kind!(
    /// To the enterprise: the guarantee expires soon.
    guarantee_expiring(GuaranteeExpiring),
    "mail/guarantee_expiring.txt",
    "mail/guarantee_expiring.html",
    |m| format!(
        "保函即将到期 Guarantee expiring in {}: {}",
        m.time_left.en(),
        m.guarantee_number
    )
);

mail_kind!(
    /// To the issuer: its signing certificate expires soon.
    certificate_expiring(CertificateExpiring),
    "mail/certificate_expiring.txt",
    "mail/certificate_expiring.html",
    |m| format!(
        "签名证书即将到期 Signing certificate expiring in {}",
        m.time_left.en()
    )
);

mail_kind!(
    /// To the person or enterprise whose credit level changed.
    credit_level_changed(CreditLevelChanged),
    "mail/credit_level_changed.txt",
    "mail/credit_level_changed.html",
    |m| format!(
        "信用等级变更 Credit level changed: {} → {}",
        m.old_level, m.new_level
    )
);

/// A subject is one header line: control characters (a stray newline in a value)
/// become spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = "<script>alert('x')</script> & Co";
    const ESCAPED: &str = "&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; Co";

    /// Every kind's HTML part escapes the recipient's name, and the text part keeps it
    /// as typed.
    fn assert_name_handled(mail: &Mail) {
        assert!(!mail.html_body.contains("<script>"), "{}", mail.html_body);
        assert!(mail.html_body.contains(ESCAPED), "{}", mail.html_body);
        assert!(mail.text_body.contains(EVIL), "{}", mail.text_body);
        assert!(!mail.subject.contains('\n'));
    }

    fn issued() -> GuaranteeIssued {
        GuaranteeIssued {
            recipient_name: EVIL.into(),
            guarantee_number: "BH-ICBC-2026-000123".into(),
            issuer_name: "中国工商银行某某支行".into(),
            enterprise_name: "某某建设有限公司".into(),
            project_name: "市第一中学新建工程".into(),
            section_name: "一标段 Section 1".into(),
            amount: "¥50,000.00".into(),
            valid_until: "2027-03-31".into(),
            verify_link: "https://baohan.example/verify/BH-ICBC-2026-000123?code=a&b".into(),
        }
    }

    #[test]
    fn guarantee_issued_has_subject_text_and_html() {
        let mail = guarantee_issued("e@example.com", &issued()).expect("rendered");
        assert_eq!(mail.to_address, "e@example.com");
        assert_eq!(
            mail.subject,
            "保函已出具 Guarantee issued: BH-ICBC-2026-000123"
        );
        for part in [&mail.text_body, &mail.html_body] {
            assert!(part.contains("BH-ICBC-2026-000123"));
            assert!(part.contains("¥50,000.00"));
            assert!(part.contains("2027-03-31"));
            assert!(part.contains("市第一中学新建工程"));
        }
        assert!(mail
            .text_body
            .contains("https://baohan.example/verify/BH-ICBC-2026-000123?code=a&b"));
        // In HTML the link is an attribute: its `&` is escaped too.
        assert!(mail
            .html_body
            .contains("href=\"https://baohan.example/verify/BH-ICBC-2026-000123?code=a&#38;b\""));
        assert!(mail.html_body.starts_with("<!DOCTYPE html>"));
        assert_name_handled(&mail);
    }

    #[test]
    fn applications_waiting_lists_each_application() {
        let line = |r: &str, amount: &str| WaitingApplication {
            application_ref: r.into(),
            enterprise_name: "某某建设有限公司".into(),
            project_name: "市第一中学新建工程".into(),
            section_name: "一标段".into(),
            bond_amount: amount.into(),
            bid_deadline: "2026-12-20 09:30".into(),
            link: format!("https://baohan.example/applications/{r}"),
        };
        let mail = applications_waiting(
            "issuer@example.com",
            &ApplicationsWaiting {
                recipient_name: EVIL.into(),
                applications: vec![line("AP-1", "¥80,000.00"), line("AP-2", "¥12,000.00")],
            },
        )
        .expect("rendered");
        assert_eq!(mail.subject, "收到保函申请 New applications: 2");
        for body in [&mail.text_body, &mail.html_body] {
            assert!(body.contains("¥80,000.00") && body.contains("¥12,000.00"));
            assert!(body.contains("AP-1") && body.contains("AP-2"));
        }
        assert!(mail.html_body.contains("2026-12-20 09:30"));
        assert_name_handled(&mail);
    }

    #[test]
    fn claim_filed_escapes_the_reason_too() {
        let mail = claim_filed(
            "issuer@example.com",
            &ClaimFiled {
                recipient_name: EVIL.into(),
                guarantee_number: "BH-ICBC-2026-000123".into(),
                claimant_name: "某某招标代理".into(),
                enterprise_name: "某某建设有限公司".into(),
                project_name: "市第一中学新建工程".into(),
                claim_amount: "¥50,000.00".into(),
                reason: "中标后放弃 <b>withdrew</b>".into(),
                link: "https://baohan.example/claims/7".into(),
            },
        )
        .expect("rendered");
        assert_eq!(mail.subject, "保函索赔 Claim filed: BH-ICBC-2026-000123");
        assert!(mail.html_body.contains("&#60;b&#62;withdrew"));
        assert!(mail.text_body.contains("<b>withdrew</b>"));
        assert_name_handled(&mail);
    }

    #[test]
    fn claim_decided_shows_the_outcome_and_only_the_optional_lines_given() {
        let paid = ClaimDecided {
            recipient_name: EVIL.into(),
            guarantee_number: "BH-ICBC-2026-000123".into(),
            outcome: ClaimOutcome::Paid,
            claim_amount: "¥50,000.00".into(),
            paid_amount: Some("¥50,000.00".into()),
            note: None,
            link: "https://baohan.example/claims/7".into(),
        };
        let mail = claim_decided("agency@example.com", &paid).expect("rendered");
        assert_eq!(mail.subject, "索赔已赔付 Claim paid: BH-ICBC-2026-000123");
        assert!(mail.text_body.contains("赔付金额 Paid"));
        assert!(!mail.text_body.contains("Note"));
        assert_name_handled(&mail);

        let rejected = ClaimDecided {
            outcome: ClaimOutcome::Rejected,
            paid_amount: None,
            note: Some("材料不全 documents missing".into()),
            ..paid
        };
        let mail = claim_decided("agency@example.com", &rejected).expect("rendered");
        assert!(mail.subject.contains("已拒绝"));
        assert!(mail.html_body.contains("rejected"));
        assert!(mail.html_body.contains("材料不全 documents missing"));
        assert!(!mail.text_body.contains("赔付金额"));
        assert_name_handled(&mail);
    }

    #[test]
    fn guarantee_released_says_who_released_it() {
        let mail = guarantee_released(
            "e@example.com",
            &GuaranteeReleased {
                recipient_name: EVIL.into(),
                guarantee_number: "BH-ICBC-2026-000123".into(),
                project_name: "市第一中学新建工程".into(),
                released_by: "某某招标代理".into(),
                released_on: "2027-01-15".into(),
                link: "https://baohan.example/guarantees/1".into(),
            },
        )
        .expect("rendered");
        assert_eq!(
            mail.subject,
            "保函已释放 Guarantee released: BH-ICBC-2026-000123"
        );
        assert!(mail.text_body.contains("2027-01-15"));
        assert!(mail.html_body.contains("某某招标代理"));
        assert_name_handled(&mail);
    }

    #[test]
    fn guarantee_changed_says_what_changed_for_each_change() {
        for change in [
            GuaranteeChange::Postponed,
            GuaranteeChange::AmendmentToSign,
            GuaranteeChange::AmendmentSigned,
            GuaranteeChange::Revoked,
        ] {
            let mail = guarantee_changed(
                "e@example.com",
                &GuaranteeChanged {
                    recipient_name: EVIL.into(),
                    change,
                    reference: "BH-ICBC-2026-000123".into(),
                    project_name: "市第一中学新建工程".into(),
                    detail: Some("撤销原因 Reason: <b>x</b>".into()),
                    link: "https://baohan.example/guarantees/1".into(),
                },
            )
            .expect("rendered");
            assert_eq!(
                mail.subject,
                format!("{}: BH-ICBC-2026-000123", change.title())
            );
            assert!(mail.text_body.contains(change.en()), "{change:?}");
            assert!(mail.html_body.contains(change.zh()), "{change:?}");
            assert!(!mail.html_body.contains("<b>x</b>"), "escaped");
            assert_name_handled(&mail);
        }
    }

    #[test]
    fn time_left_is_never_zero_days_while_time_is_left() {
        use chrono::TimeDelta;
        let at = |d: TimeDelta| TimeLeft(d);
        for (left, en, zh) in [
            (TimeDelta::hours(23), "23 hours", "23小时"),
            (TimeDelta::minutes(61), "1 hour", "1小时"),
            (TimeDelta::minutes(59), "less than an hour", "不到1小时"),
            (TimeDelta::hours(24), "1 day", "1天"),
            (TimeDelta::hours(47), "1 day", "1天"),
            (TimeDelta::days(30), "30 days", "30天"),
        ] {
            assert_eq!(
                (at(left).en().as_str(), at(left).zh().as_str()),
                (en, zh),
                "{left}"
            );
        }
        let now = chrono::NaiveDateTime::default();
        assert_eq!(
            TimeLeft::between(now, now - TimeDelta::hours(1)).en(),
            "less than an hour"
        );
    }

    #[test]
    fn certificate_expiring_names_the_certificate_and_the_date() {
        let mail = certificate_expiring(
            "bank@example.com",
            &CertificateExpiring {
                recipient_name: EVIL.into(),
                subject: "CN=滨州城市商业银行, O=<b>bank</b>".into(),
                serial: "1A2B".into(),
                fingerprint: "ab".repeat(32),
                not_after: "2027-01-01T08:00:00+08:00".into(),
                time_left: TimeLeft(chrono::TimeDelta::days(30)),
            },
        )
        .expect("rendered");
        assert_eq!(
            mail.subject,
            "签名证书即将到期 Signing certificate expiring in 30 days"
        );
        for body in [&mail.text_body, &mail.html_body] {
            assert!(body.contains("2027-01-01T08:00:00+08:00"));
            assert!(body.contains(&"ab".repeat(32)));
        }
        assert!(
            !mail.html_body.contains("<b>bank</b>"),
            "the subject is escaped"
        );
        assert_name_handled(&mail);
    }

    #[test]
    fn guarantee_expiring_counts_the_days() {
        let mail = guarantee_expiring(
            "e@example.com",
            &GuaranteeExpiring {
                recipient_name: EVIL.into(),
                guarantee_number: "BH-ICBC-2026-000123".into(),
                project_name: "市第一中学新建工程".into(),
                valid_until: "2027-03-31".into(),
                time_left: TimeLeft(chrono::TimeDelta::days(7)),
                link: "https://baohan.example/guarantees/1".into(),
            },
        )
        .expect("rendered");
        assert_eq!(
            mail.subject,
            "保函即将到期 Guarantee expiring in 7 days: BH-ICBC-2026-000123"
        );
        assert!(mail.text_body.contains("expires in 7 days"));
        assert!(mail.text_body.contains("将于7天后到期"));
        assert_name_handled(&mail);
    }

    #[test]
    fn credit_level_changed_shows_both_levels() {
        let mail = credit_level_changed(
            "p@example.com",
            &CreditLevelChanged {
                recipient_name: EVIL.into(),
                old_level: "B".into(),
                new_level: "A".into(),
                score: "812".into(),
                reason: Some("按时还款 repaid on time".into()),
                link: "https://baohan.example/credit".into(),
            },
        )
        .expect("rendered");
        assert_eq!(mail.subject, "信用等级变更 Credit level changed: B → A");
        assert!(mail.text_body.contains("from B to A (score 812)"));
        assert!(mail.html_body.contains("按时还款 repaid on time"));
        assert_name_handled(&mail);
        assert_eq!(
            CreditCause::Lapsed.reason("公用事业费欠缴", "Utility bill arrears"),
            "记录到期：公用事业费欠缴 / Record lapsed: Utility bill arrears"
        );
    }

    #[test]
    fn a_newline_in_a_subject_value_does_not_split_the_header() {
        let mut ctx = issued();
        ctx.guarantee_number = "BH-1\r\nBcc: victim@example.com".into();
        let mail = guarantee_issued("e@example.com", &ctx).expect("rendered");
        assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
    }
}
