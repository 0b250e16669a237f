//! Reductions of a guarantee's amount (URDG 758 art. 11): an amendment against the
//! beneficiary's interest, so it takes effect only when the beneficiary's side accepts
//! it. The issuer proposes a lower amount, signs the new version like any amendment,
//! and the tender agency (acting for the tenderee) accepts or refuses it; a claim, or
//! the end of the guarantee, withdraws a reduction still pending.
//!
//! Amendments in the beneficiary's favour (a longer validity after a postponement, an
//! extension asked for by an extend-or-pay demand) have no such step: they take effect
//! when the issuer signs them.

use thiserror::Error;

use super::lifecycle::TransitionError;
use super::money::Amount;
use super::string_enum::string_enum;

string_enum! {
    /// Where a proposed reduction stands.
    pub enum ReductionState ("reduction state") {
        /// Proposed by the issuer; the new version waits for its signature.
        Drafted => "drafted",
        /// Signed by the issuer; waits for the beneficiary's side to accept or refuse.
        AwaitingAcceptance => "awaiting_acceptance",
        /// Accepted: the signed version is the version in force, with the new amount.
        Accepted => "accepted",
        /// Refused by the beneficiary's side: the signed version never takes effect.
        Refused => "refused",
        /// Withdrawn before a decision: a claim was filed, or the guarantee ended.
        Withdrawn => "withdrawn",
    }
}

string_enum! {
    /// Something that can be done to a proposed reduction.
    pub enum ReductionAction ("reduction action") {
        /// The issuer signs the new version.
        Sign => "sign",
        /// The beneficiary's side accepts it.
        Accept => "accept",
        /// The beneficiary's side refuses it.
        Refuse => "refuse",
        /// A claim or the end of the guarantee withdraws it.
        Withdraw => "withdraw",
    }
}

impl ReductionAction {
    const fn verb(self) -> &'static str {
        match self {
            ReductionAction::Sign => "sign",
            ReductionAction::Accept => "accept",
            ReductionAction::Refuse => "refuse",
            ReductionAction::Withdraw => "withdraw",
        }
    }
}

impl ReductionState {
    /// The state after `action`, or why it is not allowed.
    pub fn transition(self, action: ReductionAction) -> Result<ReductionState, TransitionError> {
        use ReductionAction as A;
        use ReductionState as S;
        match (self, action) {
            (S::Drafted, A::Sign) => Ok(S::AwaitingAcceptance),
            (S::AwaitingAcceptance, A::Accept) => Ok(S::Accepted),
            (S::AwaitingAcceptance, A::Refuse) => Ok(S::Refused),
            (S::Drafted | S::AwaitingAcceptance, A::Withdraw) => Ok(S::Withdrawn),
            _ => Err(TransitionError::refused(
                "reduction",
                action.as_str(),
                self.as_str(),
                action.verb(),
                "a",
            )),
        }
    }

    /// Whether it may still take effect (drafted or awaiting acceptance): at most one
    /// such reduction per guarantee.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            ReductionState::Drafted | ReductionState::AwaitingAcceptance
        )
    }
}

/// Why a reduced amount is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReductionAmountError {
    #[error("must be more than zero")]
    NotPositive,
    #[error("must be less than the current amount, {current}")]
    NotBelowCurrent { current: Amount },
    #[error("must not be less than what has been paid under the guarantee, {paid}")]
    BelowPaid { paid: Amount },
}

/// A reduction lowers the amount in force strictly, never below what the issuer has
/// already paid under claims (the amount outstanding cannot go negative).
pub fn check_reduced_amount(
    current: Amount,
    paid: Amount,
    reduced: Amount,
) -> Result<(), ReductionAmountError> {
    if reduced.fen() <= 0 {
        Err(ReductionAmountError::NotPositive)
    } else if reduced >= current {
        Err(ReductionAmountError::NotBelowCurrent { current })
    } else if reduced < paid {
        Err(ReductionAmountError::BelowPaid { paid })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reduction_table_is_exactly_as_designed() {
        use ReductionAction::*;
        use ReductionState::*;
        let expected: [(ReductionState, ReductionAction, Option<ReductionState>); 20] = [
            (Drafted, Sign, Some(AwaitingAcceptance)),
            (Drafted, Accept, None),
            (Drafted, Refuse, None),
            (Drafted, Withdraw, Some(Withdrawn)),
            (AwaitingAcceptance, Sign, None),
            (AwaitingAcceptance, Accept, Some(Accepted)),
            (AwaitingAcceptance, Refuse, Some(Refused)),
            (AwaitingAcceptance, Withdraw, Some(Withdrawn)),
            (Accepted, Sign, None),
            (Accepted, Accept, None),
            (Accepted, Refuse, None),
            (Accepted, Withdraw, None),
            (Refused, Sign, None),
            (Refused, Accept, None),
            (Refused, Refuse, None),
            (Refused, Withdraw, None),
            (Withdrawn, Sign, None),
            (Withdrawn, Accept, None),
            (Withdrawn, Refuse, None),
            (Withdrawn, Withdraw, None),
        ];
        assert_eq!(
            expected.len(),
            ReductionState::ALL.len() * ReductionAction::ALL.len()
        );
        for (state, action, next) in expected {
            assert_eq!(state.transition(action).ok(), next, "{state} --{action}-->");
        }
    }

    #[test]
    fn pending_means_some_action_is_still_allowed() {
        for &s in ReductionState::ALL {
            let any = ReductionAction::ALL
                .iter()
                .any(|&a| s.transition(a).is_ok());
            assert_eq!(s.is_pending(), any, "{s}");
        }
    }

    #[test]
    fn refusals_name_the_action_and_the_current_state() {
        let err = ReductionState::Refused
            .transition(ReductionAction::Accept)
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot accept a reduction that is refused");
        assert_eq!(
            (err.entity, err.action, err.current),
            ("reduction", "accept", "refused")
        );
    }

    #[test]
    fn strings_are_the_documented_snake_case_values() {
        let s: Vec<_> = ReductionState::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(
            s,
            [
                "drafted",
                "awaiting_acceptance",
                "accepted",
                "refused",
                "withdrawn"
            ]
        );
        let s: Vec<_> = ReductionAction::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(s, ["sign", "accept", "refuse", "withdraw"]);
    }

    fn yuan(y: i64) -> Amount {
        Amount::from_fen(y * 100)
    }

    #[test]
    fn a_reduced_amount_lies_between_what_was_paid_and_the_current_amount() {
        let (current, paid) = (yuan(80_000), yuan(30_000));
        assert_eq!(check_reduced_amount(current, paid, yuan(50_000)), Ok(()));
        assert_eq!(check_reduced_amount(current, paid, yuan(30_000)), Ok(()));
        assert_eq!(
            check_reduced_amount(current, paid, Amount::from_fen(7_999_999)),
            Ok(())
        );
        assert_eq!(
            check_reduced_amount(current, paid, current),
            Err(ReductionAmountError::NotBelowCurrent { current })
        );
        assert_eq!(
            check_reduced_amount(current, paid, yuan(90_000)),
            Err(ReductionAmountError::NotBelowCurrent { current })
        );
        assert_eq!(
            check_reduced_amount(current, paid, Amount::from_fen(2_999_999)),
            Err(ReductionAmountError::BelowPaid { paid })
        );
        assert_eq!(
            check_reduced_amount(current, Amount::from_fen(0), Amount::from_fen(0)),
            Err(ReductionAmountError::NotPositive)
        );
        assert_eq!(
            check_reduced_amount(current, paid, yuan(90_000))
                .unwrap_err()
                .to_string(),
            "must be less than the current amount, 80000.00"
        );
    }

    proptest! {
        #[test]
        fn an_accepted_amount_keeps_the_outstanding_amount_between_zero_and_the_old(
            current in 1i64..10_000_000_000,
            paid_part in 0u32..=100,
            reduced in -10i64..10_000_000_010,
        ) {
            let paid = current * i64::from(paid_part) / 100;
            let ok = check_reduced_amount(
                Amount::from_fen(current),
                Amount::from_fen(paid),
                Amount::from_fen(reduced),
            )
            .is_ok();
            prop_assert_eq!(ok, reduced > 0 && reduced < current && reduced >= paid);
            if ok {
                prop_assert!(reduced - paid >= 0 && reduced - paid < current - paid);
            }
        }
    }
}
