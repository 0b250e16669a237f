//! Lifecycles of a guarantee application (保函申请) and a guarantee (保函) as explicit
//! transition tables. Anything not in a table is refused with an error naming the current
//! state. Persisting a transition (conditional update, audit, mails) is the caller's job.
//!
//! A rejected claim returns the guarantee to the state it was in before the claim. States
//! stay plain values (one text column each), so that earlier state is kept beside the
//! state, as a nullable `claimed_from` column ([`PreClaimState`]): the caller stores
//! [`GuaranteeState::pre_claim`] of the current state when applying `Claim`, and passes it
//! back to every [`GuaranteeState::transition`].

use thiserror::Error;

use super::string_enum::string_enum;

/// A transition that the table does not allow from the current state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("cannot {verb} {article} {entity} that is {current}{reason}")]
pub struct TransitionError {
    /// `"application"` or `"guarantee"`.
    pub entity: &'static str,
    /// The refused action, as its snake_case text.
    pub action: &'static str,
    /// The current state, as its snake_case text.
    pub current: &'static str,
    verb: &'static str,
    article: &'static str,
    reason: &'static str,
}

impl TransitionError {
    /// A refusal of `action` (its snake_case text, done as `verb`) on an `entity` that
    /// is `current`, for the other transition tables of the domain (reductions).
    pub(crate) const fn refused(
        entity: &'static str,
        action: &'static str,
        current: &'static str,
        verb: &'static str,
        article: &'static str,
    ) -> TransitionError {
        TransitionError {
            entity,
            action,
            current,
            verb,
            article,
            reason: "",
        }
    }
}

string_enum! {
    /// State of a guarantee application.
    pub enum ApplicationState ("application state") {
        /// Sent by the enterprise, waiting for the issuer.
        Submitted => "submitted",
        /// Accepted by the issuer with a premium quote (报价).
        Approved => "approved",
        /// The issuer confirmed receipt of the premium (保费).
        Paid => "paid",
        /// The guarantee was issued (terminal for the application).
        Issued => "issued",
        /// Refused by the issuer.
        Declined => "declined",
        /// Withdrawn by the enterprise.
        Withdrawn => "withdrawn",
    }
}

string_enum! {
    /// Something that can be done to an application.
    pub enum ApplicationAction ("application action") {
        /// Issuer approves and quotes a premium.
        Approve => "approve",
        /// Issuer declines.
        Decline => "decline",
        /// Issuer confirms the premium was paid (payment itself is outside the exchange).
        ConfirmPayment => "confirm_payment",
        /// Issuer issues the guarantee.
        Issue => "issue",
        /// Enterprise withdraws.
        Withdraw => "withdraw",
    }
}

impl ApplicationAction {
    const fn verb(self) -> &'static str {
        match self {
            ApplicationAction::Approve => "approve",
            ApplicationAction::Decline => "decline",
            ApplicationAction::ConfirmPayment => "confirm payment for",
            ApplicationAction::Issue => "issue the guarantee for",
            ApplicationAction::Withdraw => "withdraw",
        }
    }
}

impl ApplicationState {
    /// The state after `action`, or why it is not allowed.
    pub fn transition(
        self,
        action: ApplicationAction,
    ) -> Result<ApplicationState, TransitionError> {
        use ApplicationAction as A;
        use ApplicationState as S;
        match (self, action) {
            (S::Submitted, A::Approve) => Ok(S::Approved),
            (S::Submitted, A::Decline) => Ok(S::Declined),
            (S::Approved, A::ConfirmPayment) => Ok(S::Paid),
            (S::Paid, A::Issue) => Ok(S::Issued),
            (S::Submitted | S::Approved, A::Withdraw) => Ok(S::Withdrawn),
            _ => Err(TransitionError {
                entity: "application",
                action: action.as_str(),
                current: self.as_str(),
                verb: action.verb(),
                article: "an",
                reason: "",
            }),
        }
    }

    /// Whether no action is possible any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ApplicationState::Issued | ApplicationState::Declined | ApplicationState::Withdrawn
        )
    }
}

string_enum! {
    /// State of an issued guarantee.
    pub enum GuaranteeState ("guarantee state") {
        /// Issued, in force, not yet accepted by the agency.
        Issued => "issued",
        /// Accepted by the agency after bid opening (no longer cancellable or revocable).
        Accepted => "accepted",
        /// A demand for payment (索赔) is pending with the issuer.
        Claimed => "claimed",
        /// Released: award lost or contract signed (解除).
        Released => "released",
        /// The claim was paid (赔付).
        Paid => "paid",
        /// Cancelled (退保): bid withdrawn before the deadline or tender failed (流标).
        Cancelled => "cancelled",
        /// Revoked by the issuer before acceptance (error or fraud).
        Revoked => "revoked",
        /// Validity ended without a claim.
        Expired => "expired",
    }
}

string_enum! {
    /// Something that can be done to a guarantee.
    pub enum GuaranteeAction ("guarantee action") {
        /// Agency accepts the guarantee.
        Accept => "accept",
        /// Release the guarantee.
        Release => "release",
        /// Beneficiary's agency makes a demand.
        Claim => "claim",
        /// Issuer pays the demand.
        PayClaim => "pay_claim",
        /// Issuer rejects the demand.
        RejectClaim => "reject_claim",
        /// Issuer pays the demand and an amount stays outstanding: the guarantee is
        /// reduced and back in force (URDG 758 art. 17: partial demands).
        PayPart => "pay_part",
        /// Issuer extends the guarantee as an extend-or-pay demand asked, by a signed
        /// amendment: the demand is withdrawn and the guarantee back in force (URDG 758
        /// art. 23).
        Extend => "extend",
        /// Cancel (退保).
        Cancel => "cancel",
        /// Issuer revokes.
        Revoke => "revoke",
        /// Validity passes.
        Expire => "expire",
        /// Amend (e.g. deadline postponed, 延标): a new signed version, same state.
        Amend => "amend",
    }
}

string_enum! {
    /// The state a guarantee was in when a claim was made: where a rejected claim returns.
    pub enum PreClaimState ("pre-claim state") {
        /// Claimed before acceptance.
        Issued => "issued",
        /// Claimed after acceptance.
        Accepted => "accepted",
    }
}

string_enum! {
    /// State of a claim (索赔) on a guarantee.
    pub enum ClaimState ("claim state") {
        /// Filed by the beneficiary's agency, waiting for the issuer's decision.
        Filed => "filed",
        /// The issuer paid it.
        Paid => "paid",
        /// The issuer rejected it; the guarantee returned to its state before the claim.
        Rejected => "rejected",
        /// An extend-or-pay demand the issuer chose to meet by extending: the amendment
        /// waits for its signature, payment is suspended meanwhile.
        Extending => "extending",
        /// The extension is signed: the demand is withdrawn, the guarantee back in force.
        Extended => "extended",
    }
}

impl From<PreClaimState> for GuaranteeState {
    fn from(state: PreClaimState) -> GuaranteeState {
        match state {
            PreClaimState::Issued => GuaranteeState::Issued,
            PreClaimState::Accepted => GuaranteeState::Accepted,
        }
    }
}

impl GuaranteeAction {
    const fn verb(self) -> &'static str {
        match self {
            GuaranteeAction::Accept => "accept",
            GuaranteeAction::Release => "release",
            GuaranteeAction::Claim => "claim on",
            GuaranteeAction::PayClaim => "pay a claim on",
            GuaranteeAction::RejectClaim => "reject a claim on",
            GuaranteeAction::PayPart => "pay part of a claim on",
            GuaranteeAction::Extend => "extend",
            GuaranteeAction::Cancel => "cancel",
            GuaranteeAction::Revoke => "revoke",
            GuaranteeAction::Expire => "expire",
            GuaranteeAction::Amend => "amend",
        }
    }
}

impl GuaranteeState {
    /// The state after `action`, or why it is not allowed.
    ///
    /// `claimed_from` is the stored state before the pending claim; it is read only by
    /// `RejectClaim` on a claimed guarantee, which fails if it is missing.
    pub fn transition(
        self,
        action: GuaranteeAction,
        claimed_from: Option<PreClaimState>,
    ) -> Result<GuaranteeState, TransitionError> {
        use GuaranteeAction as A;
        use GuaranteeState as S;
        let refuse = |reason| TransitionError {
            entity: "guarantee",
            action: action.as_str(),
            current: self.as_str(),
            verb: action.verb(),
            article: "a",
            reason,
        };
        match (self, action) {
            (S::Issued, A::Accept) => Ok(S::Accepted),
            (S::Issued | S::Accepted, A::Release) => Ok(S::Released),
            (S::Issued | S::Accepted, A::Claim) => Ok(S::Claimed),
            (S::Claimed, A::PayClaim) => Ok(S::Paid),
            (S::Claimed, A::RejectClaim | A::PayPart | A::Extend) => claimed_from
                .map(GuaranteeState::from)
                .ok_or_else(|| refuse(": the state before the claim is not recorded")),
            (S::Issued, A::Cancel) => Ok(S::Cancelled),
            (S::Issued, A::Revoke) => Ok(S::Revoked),
            (S::Issued | S::Accepted, A::Expire) => Ok(S::Expired),
            (S::Issued | S::Accepted, A::Amend) => Ok(self),
            _ => Err(refuse("")),
        }
    }

    /// What to store as `claimed_from` when a claim is made in this state.
    pub fn pre_claim(self) -> Option<PreClaimState> {
        match self {
            GuaranteeState::Issued => Some(PreClaimState::Issued),
            GuaranteeState::Accepted => Some(PreClaimState::Accepted),
            _ => None,
        }
    }

    /// Whether the guarantee is in force (public verification shows it as valid):
    /// issued, accepted or claimed.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            GuaranteeState::Issued | GuaranteeState::Accepted | GuaranteeState::Claimed
        )
    }

    /// Whether no action is possible any more.
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    #[test]
    fn application_table_is_exactly_as_designed() {
        use ApplicationAction::*;
        use ApplicationState::*;
        // Every (state, action) pair, written out: None = refused.
        let expected: [(
            ApplicationState,
            ApplicationAction,
            Option<ApplicationState>,
        ); 30] = [
            (Submitted, Approve, Some(Approved)),
            (Submitted, Decline, Some(Declined)),
            (Submitted, ConfirmPayment, None),
            (Submitted, Issue, None),
            (Submitted, Withdraw, Some(Withdrawn)),
            (Approved, Approve, None),
            (Approved, Decline, None),
            (Approved, ConfirmPayment, Some(Paid)),
            (Approved, Issue, None),
            (Approved, Withdraw, Some(Withdrawn)),
            (Paid, Approve, None),
            (Paid, Decline, None),
            (Paid, ConfirmPayment, None),
            (Paid, Issue, Some(ApplicationState::Issued)),
            (Paid, Withdraw, None),
            (ApplicationState::Issued, Approve, None),
            (ApplicationState::Issued, Decline, None),
            (ApplicationState::Issued, ConfirmPayment, None),
            (ApplicationState::Issued, Issue, None),
            (ApplicationState::Issued, Withdraw, None),
            (Declined, Approve, None),
            (Declined, Decline, None),
            (Declined, ConfirmPayment, None),
            (Declined, Issue, None),
            (Declined, Withdraw, None),
            (Withdrawn, Approve, None),
            (Withdrawn, Decline, None),
            (Withdrawn, ConfirmPayment, None),
            (Withdrawn, Issue, None),
            (Withdrawn, Withdraw, None),
        ];
        assert_eq!(
            expected.len(),
            ApplicationState::ALL.len() * ApplicationAction::ALL.len()
        );
        for (state, action, next) in expected {
            assert_eq!(state.transition(action).ok(), next, "{state} --{action}-->");
        }
    }

    #[test]
    fn guarantee_table_is_exactly_as_designed() {
        use GuaranteeAction::*;
        use GuaranteeState::*;
        // Every (state, action) pair, written out: None = refused. The claim here was
        // made after acceptance, so a rejected claim returns to Accepted.
        let expected: [(GuaranteeState, GuaranteeAction, Option<GuaranteeState>); 88] = [
            (Issued, Accept, Some(Accepted)),
            (Issued, Release, Some(Released)),
            (Issued, Claim, Some(Claimed)),
            (Issued, PayClaim, None),
            (Issued, RejectClaim, None),
            (Issued, PayPart, None),
            (Issued, Extend, None),
            (Issued, Cancel, Some(Cancelled)),
            (Issued, Revoke, Some(Revoked)),
            (Issued, Expire, Some(Expired)),
            (Issued, Amend, Some(Issued)),
            (Accepted, Accept, None),
            (Accepted, Release, Some(Released)),
            (Accepted, Claim, Some(Claimed)),
            (Accepted, PayClaim, None),
            (Accepted, RejectClaim, None),
            (Accepted, PayPart, None),
            (Accepted, Extend, None),
            (Accepted, Cancel, None),
            (Accepted, Revoke, None),
            (Accepted, Expire, Some(Expired)),
            (Accepted, Amend, Some(Accepted)),
            (Claimed, Accept, None),
            (Claimed, Release, None),
            (Claimed, Claim, None),
            (Claimed, PayClaim, Some(Paid)),
            (Claimed, RejectClaim, Some(Accepted)),
            (Claimed, PayPart, Some(Accepted)),
            (Claimed, Extend, Some(Accepted)),
            (Claimed, Cancel, None),
            (Claimed, Revoke, None),
            (Claimed, Expire, None),
            (Claimed, Amend, None),
            (Released, Accept, None),
            (Released, Release, None),
            (Released, Claim, None),
            (Released, PayClaim, None),
            (Released, RejectClaim, None),
            (Released, PayPart, None),
            (Released, Extend, None),
            (Released, Cancel, None),
            (Released, Revoke, None),
            (Released, Expire, None),
            (Released, Amend, None),
            (Paid, Accept, None),
            (Paid, Release, None),
            (Paid, Claim, None),
            (Paid, PayClaim, None),
            (Paid, RejectClaim, None),
            (Paid, PayPart, None),
            (Paid, Extend, None),
            (Paid, Cancel, None),
            (Paid, Revoke, None),
            (Paid, Expire, None),
            (Paid, Amend, None),
            (Cancelled, Accept, None),
            (Cancelled, Release, None),
            (Cancelled, Claim, None),
            (Cancelled, PayClaim, None),
            (Cancelled, RejectClaim, None),
            (Cancelled, PayPart, None),
            (Cancelled, Extend, None),
            (Cancelled, Cancel, None),
            (Cancelled, Revoke, None),
            (Cancelled, Expire, None),
            (Cancelled, Amend, None),
            (Revoked, Accept, None),
            (Revoked, Release, None),
            (Revoked, Claim, None),
            (Revoked, PayClaim, None),
            (Revoked, RejectClaim, None),
            (Revoked, PayPart, None),
            (Revoked, Extend, None),
            (Revoked, Cancel, None),
            (Revoked, Revoke, None),
            (Revoked, Expire, None),
            (Revoked, Amend, None),
            (Expired, Accept, None),
            (Expired, Release, None),
            (Expired, Claim, None),
            (Expired, PayClaim, None),
            (Expired, RejectClaim, None),
            (Expired, PayPart, None),
            (Expired, Extend, None),
            (Expired, Cancel, None),
            (Expired, Revoke, None),
            (Expired, Expire, None),
            (Expired, Amend, None),
        ];
        assert_eq!(
            expected.len(),
            GuaranteeState::ALL.len() * GuaranteeAction::ALL.len()
        );
        for (state, action, next) in expected {
            let got = state.transition(action, Some(PreClaimState::Accepted)).ok();
            assert_eq!(got, next, "{state} --{action}-->");
            // Apart from a rejected claim, the stored pre-claim state changes nothing.
            if !(state == Claimed && matches!(action, RejectClaim | PayPart | Extend)) {
                for claimed_from in [None, Some(PreClaimState::Issued)] {
                    assert_eq!(state.transition(action, claimed_from).ok(), next);
                }
            }
        }
    }

    #[test]
    fn rejected_claim_returns_to_the_pre_claim_state() {
        use GuaranteeState as S;
        for from in [S::Issued, S::Accepted] {
            let claimed = from.transition(GuaranteeAction::Claim, None).unwrap();
            let stored = from.pre_claim();
            assert_eq!(
                claimed.transition(GuaranteeAction::RejectClaim, stored),
                Ok(from)
            );
        }
        let err = S::Claimed
            .transition(GuaranteeAction::RejectClaim, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot reject a claim on a guarantee that is claimed: the state before the claim is not recorded"
        );
        let pre: Vec<_> = S::ALL.iter().map(|s| s.pre_claim()).collect();
        assert_eq!(
            pre,
            [
                Some(PreClaimState::Issued),
                Some(PreClaimState::Accepted),
                None,
                None,
                None,
                None,
                None,
                None
            ]
        );
    }

    #[test]
    fn errors_name_the_action_and_the_current_state() {
        let err = GuaranteeState::Released
            .transition(GuaranteeAction::Accept, None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot accept a guarantee that is released"
        );
        assert_eq!(
            (err.entity, err.action, err.current),
            ("guarantee", "accept", "released")
        );
        assert_eq!(
            GuaranteeState::Issued
                .transition(GuaranteeAction::PayClaim, None)
                .unwrap_err()
                .to_string(),
            "cannot pay a claim on a guarantee that is issued"
        );
        let err = ApplicationState::Submitted
            .transition(ApplicationAction::ConfirmPayment)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot confirm payment for an application that is submitted"
        );
        assert_eq!(
            (err.entity, err.action, err.current),
            ("application", "confirm_payment", "submitted")
        );
    }

    #[test]
    fn terminal_and_active_states_are_as_designed() {
        use ApplicationState as A;
        use GuaranteeState as G;
        let terminal: Vec<_> = A::ALL.iter().filter(|s| s.is_terminal()).copied().collect();
        assert_eq!(terminal, [A::Issued, A::Declined, A::Withdrawn]);
        let active: Vec<_> = G::ALL.iter().filter(|s| s.is_active()).copied().collect();
        assert_eq!(active, [G::Issued, G::Accepted, G::Claimed]);
        let terminal: Vec<_> = G::ALL.iter().filter(|s| s.is_terminal()).copied().collect();
        assert_eq!(
            terminal,
            [G::Released, G::Paid, G::Cancelled, G::Revoked, G::Expired]
        );
    }

    #[test]
    fn terminal_means_no_action_is_allowed() {
        for &s in ApplicationState::ALL {
            let any = ApplicationAction::ALL
                .iter()
                .any(|&a| s.transition(a).is_ok());
            assert_eq!(s.is_terminal(), !any, "{s}");
        }
        for &s in GuaranteeState::ALL {
            let any = GuaranteeAction::ALL
                .iter()
                .any(|&a| s.transition(a, Some(PreClaimState::Issued)).is_ok());
            assert_eq!(s.is_terminal(), !any, "{s}");
        }
    }

    #[test]
    fn strings_are_the_documented_snake_case_values() {
        let s: Vec<_> = ApplicationState::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(
            s,
            [
                "submitted",
                "approved",
                "paid",
                "issued",
                "declined",
                "withdrawn"
            ]
        );
        let s: Vec<_> = ApplicationAction::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(
            s,
            ["approve", "decline", "confirm_payment", "issue", "withdraw"]
        );
        let s: Vec<_> = GuaranteeState::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(
            s,
            [
                "issued",
                "accepted",
                "claimed",
                "released",
                "paid",
                "cancelled",
                "revoked",
                "expired"
            ]
        );
        let s: Vec<_> = GuaranteeAction::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(
            s,
            [
                "accept",
                "release",
                "claim",
                "pay_claim",
                "reject_claim",
                "pay_part",
                "extend",
                "cancel",
                "revoke",
                "expire",
                "amend"
            ]
        );
        let s: Vec<_> = PreClaimState::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(s, ["issued", "accepted"]);
        let s: Vec<_> = ClaimState::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(s, ["filed", "paid", "rejected", "extending", "extended"]);
    }

    #[test]
    fn every_value_round_trips_through_from_str_and_json() {
        fn check<T>(all: &[T])
        where
            T: Copy
                + PartialEq
                + std::fmt::Debug
                + std::fmt::Display
                + FromStr
                + serde::Serialize
                + serde::de::DeserializeOwned,
            <T as FromStr>::Err: std::fmt::Debug,
        {
            for &v in all {
                assert_eq!(T::from_str(&v.to_string()).unwrap(), v);
                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(json, format!("\"{v}\""));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
            }
        }
        check(ApplicationState::ALL);
        check(ApplicationAction::ALL);
        check(GuaranteeState::ALL);
        check(GuaranteeAction::ALL);
        check(PreClaimState::ALL);
        assert!(GuaranteeState::from_str("Issued").is_err());
        assert!(GuaranteeAction::from_str("payclaim").is_err());
        assert!(PreClaimState::from_str("claimed").is_err());
        let err = serde_json::from_str::<ApplicationAction>("\"pay\"").unwrap_err();
        assert!(
            err.to_string().contains("unknown application action"),
            "{err}"
        );
    }

    fn guarantee_actions() -> impl Strategy<Value = Vec<GuaranteeAction>> {
        proptest::collection::vec(proptest::sample::select(GuaranteeAction::ALL), 0..30)
    }

    proptest! {
        /// Drive a guarantee through random actions the way the service would, keeping
        /// `claimed_from` beside the state.
        #[test]
        fn guarantee_runs_respect_the_invariants(actions in guarantee_actions()) {
            let mut state = GuaranteeState::Issued;
            let mut claimed_from: Option<PreClaimState> = None;
            let mut ever_accepted = false;
            for action in actions {
                match state.transition(action, claimed_from) {
                    Ok(next) => {
                        prop_assert!(!state.is_terminal());
                        if action == GuaranteeAction::Claim {
                            claimed_from = state.pre_claim();
                        } else if state == GuaranteeState::Claimed {
                            claimed_from = None;
                        }
                        state = next;
                    }
                    Err(err) => prop_assert_eq!(err.current, state.as_str()),
                }
                ever_accepted |= state == GuaranteeState::Accepted;
                // Once accepted, a guarantee can never be cancelled or revoked.
                prop_assert!(!(ever_accepted && matches!(
                    state,
                    GuaranteeState::Issued | GuaranteeState::Cancelled | GuaranteeState::Revoked
                )));
                prop_assert_eq!(claimed_from.is_some(), state == GuaranteeState::Claimed);
            }
        }

        #[test]
        fn application_runs_end_in_issued_only_after_payment(
            actions in proptest::collection::vec(proptest::sample::select(ApplicationAction::ALL), 0..20)
        ) {
            let mut state = ApplicationState::Submitted;
            let mut history = vec![state];
            for action in actions {
                if let Ok(next) = state.transition(action) {
                    state = next;
                    history.push(state);
                }
            }
            if state == ApplicationState::Issued {
                prop_assert_eq!(
                    history,
                    [
                        ApplicationState::Submitted,
                        ApplicationState::Approved,
                        ApplicationState::Paid,
                        ApplicationState::Issued
                    ]
                );
            }
        }

        #[test]
        fn from_str_never_panics(s in any::<String>()) {
            let _ = GuaranteeState::from_str(&s);
            let _ = GuaranteeAction::from_str(&s);
            let _ = ApplicationState::from_str(&s);
            let _ = ApplicationAction::from_str(&s);
        }
    }
}
