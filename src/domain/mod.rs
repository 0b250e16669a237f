//! Pure domain rules: money, identifiers, parties, premium terms, lifecycles, tenders,
//! claims, the business-day calendar, and the text and dates people type.
//!
//! No I/O here: no database, no HTTP, no clock reads. Each concept has its own error
//! enum; the web layer attaches field names when it reports them (tender checks, which
//! cover several fields at once, name the field themselves).

pub mod attachment;
pub mod calendar;
pub mod catalogue;
pub mod claim;
pub mod credit;
pub mod guarantee_number;
pub mod letter;
pub mod lifecycle;
pub mod money;
pub mod party;
pub mod premium;
pub mod reduction;
pub mod region;
pub mod resident_id;
pub mod rights_code;
mod string_enum;
pub mod tender;
pub mod text;
pub mod time;
pub mod uscc;
pub mod verification_code;
pub mod waiver;

pub use calendar::{Calendar, CalendarError, DayKind};
pub use claim::ClaimReason;
pub use guarantee_number::{GuaranteeNumber, GuaranteeNumberError};
pub use lifecycle::{
    ApplicationAction, ApplicationState, ClaimState, GuaranteeAction, GuaranteeState,
    PreClaimState, TransitionError,
};
pub use money::{Amount, MoneyError};
pub use party::{IssuerKind, OrgKind, ProviderKind, Role};
pub use premium::{PremiumTerms, QuoteError, TermsError};
pub use resident_id::{ResidentId, ResidentIdError};
pub(crate) use string_enum::string_enum;
pub use string_enum::ParseEnumError;
pub use tender::{TenderError, TenderProblem};
pub use text::{TextError, TextRules};
pub use uscc::{Uscc, UsccError};
pub use verification_code::{VerificationCode, VerificationCodeError};
