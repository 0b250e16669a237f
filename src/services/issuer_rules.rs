//! An issuer's own rules by the applicant's credit level (the exchange reads the
//! archive): the premium discount it gives on its published quote, and whether an
//! application at that level needs a manual review or may be fast-tracked. The issuer
//! sets them; it sees them applied to each application it underwrites, beside the
//! applicant's level.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{require_role, Actor, Context, ServiceError};
use crate::db::audit::{self, AuditEvent};
use crate::db::schema::issuer_credit_rules;
use crate::db::DbConnection;
use crate::domain::catalogue::CreditLevel;
use crate::domain::money::Amount;
use crate::domain::party::Role;

/// The largest discount an issuer may give, in percent of its quote.
pub const MAX_DISCOUNT_PERCENT: i32 = 50;

/// One level's rule.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(deny_unknown_fields)]
pub struct LevelRule {
    pub level: CreditLevel,
    /// Percent off the published quote, 0 to 50.
    pub discount_percent: i32,
    /// Whether an application at this level needs a manual review (otherwise the
    /// exchange approves it as it arrives, at the issuer's published quote less the
    /// discount, when the issuer has terms in force that serve the bond).
    pub manual_review: bool,
}

impl LevelRule {
    /// What a level without a rule gets: no discount, a manual review.
    pub fn none(level: CreditLevel) -> LevelRule {
        LevelRule {
            level,
            discount_percent: 0,
            manual_review: true,
        }
    }

    /// The quote after the discount, in whole fen rounded half up.
    pub fn discounted(&self, quote: Amount) -> Amount {
        let keep = i64::from(100 - self.discount_percent.clamp(0, MAX_DISCOUNT_PERCENT));
        Amount::from_fen((quote.fen() * keep + 50) / 100)
    }
}

/// The signed-in issuer's rules, every level listed (best first).
pub fn my_rules(ctx: &Context, actor: &Actor) -> Result<Vec<LevelRule>, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    let mut conn = ctx.conn()?;
    CreditLevel::ALL
        .iter()
        .map(|l| rule_for(&mut conn, &actor.organization_id, *l))
        .collect()
}

/// The rule an issuer set for a level, or [`LevelRule::none`].
pub fn rule_for(
    c: &mut DbConnection,
    issuer_id: &str,
    level: CreditLevel,
) -> Result<LevelRule, ServiceError> {
    let row: Option<(i32, bool)> = issuer_credit_rules::table
        .find((issuer_id, level.as_str()))
        .select((
            issuer_credit_rules::discount_percent,
            issuer_credit_rules::manual_review,
        ))
        .first(c)
        .optional()?;
    Ok(row.map_or(LevelRule::none(level), |(d, m)| LevelRule {
        level,
        discount_percent: d,
        manual_review: m,
    }))
}

/// Replaces the signed-in issuer's rules with `rules` (levels left out get none), in
/// one transaction, audited. Each level at most once; discounts 0 to 50.
pub fn set_rules(
    ctx: &Context,
    actor: &Actor,
    rules: &[LevelRule],
) -> Result<Vec<LevelRule>, ServiceError> {
    require_role(actor, &[Role::Issuer])?;
    for (i, r) in rules.iter().enumerate() {
        if !(0..=MAX_DISCOUNT_PERCENT).contains(&r.discount_percent) {
            return Err(ServiceError::invalid(
                "discount_percent",
                format!("must be 0 to {MAX_DISCOUNT_PERCENT}"),
            ));
        }
        if rules[..i].iter().any(|o| o.level == r.level) {
            return Err(ServiceError::invalid(
                "level",
                format!("{} is given twice", r.level),
            ));
        }
    }
    let mut conn = ctx.conn()?;
    let at: NaiveDateTime = ctx.now();
    ctx.write_tx(&mut conn, |c| {
        diesel::delete(
            issuer_credit_rules::table
                .filter(issuer_credit_rules::issuer_id.eq(&actor.organization_id)),
        )
        .execute(c)?;
        for r in rules {
            diesel::insert_into(issuer_credit_rules::table)
                .values((
                    issuer_credit_rules::issuer_id.eq(&actor.organization_id),
                    issuer_credit_rules::level.eq(r.level.as_str()),
                    issuer_credit_rules::discount_percent.eq(r.discount_percent),
                    issuer_credit_rules::manual_review.eq(r.manual_review),
                    issuer_credit_rules::updated_at.eq(at),
                ))
                .execute(c)?;
        }
        audit::append(
            c,
            &AuditEvent {
                actor_user_id: Some(&actor.user_id),
                actor_organization_id: Some(&actor.organization_id),
                action: "set_issuer_credit_rules",
                entity_kind: "organization",
                entity_id: &actor.organization_id,
                details: serde_json::json!({ "rules": rules }),
                ..Default::default()
            },
            at,
        )?;
        Ok(())
    })?;
    my_rules(ctx, actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_discount_comes_off_the_quote_in_whole_fen() {
        let rule = LevelRule {
            level: CreditLevel::Aa,
            discount_percent: 20,
            manual_review: false,
        };
        let quote = Amount::parse("1200.00").expect("amount");
        assert_eq!(
            rule.discounted(quote),
            Amount::parse("960.00").expect("amount")
        );
        let odd = Amount::parse("0.05").expect("amount");
        assert_eq!(rule.discounted(odd), Amount::from_fen(4));
        assert_eq!(
            LevelRule::none(CreditLevel::B).discounted(quote),
            quote,
            "no rule, no discount"
        );
    }
}
