//! The closed sets of `domain` (states, kinds, roles) as database text columns: rows
//! hold the typed value, so a state is parsed once, where it is read, and an unknown
//! stored text is a deserialization error rather than something each use case checks.
//!
//! The domain stays free of diesel: the impls live here, made for each type by
//! diesel's own derives in their `foreign_derive` form.

use crate::domain::attachment::{AttachmentKind, FileType, ParentKind};
use crate::domain::catalogue::{CreditLevel, Dimension, Polarity, SubjectKind};
use crate::domain::credit::{CancelReason, LookPurpose};
use crate::domain::letter::LetterKind;
use crate::domain::reduction::ReductionState;
use crate::domain::waiver::{RefusalReason, WaiverState};
use crate::domain::{
    ApplicationState, ClaimReason, ClaimState, GuaranteeState, IssuerKind, OrgKind, PreClaimState,
    ProviderKind, Role,
};

/// Stores each named type as its snake_case text (`as_str`) and reads it back with
/// `FromStr`.
macro_rules! text_columns {
    ($($ty:ident),+ $(,)?) => {$(
        const _: () = {
            #[derive(diesel::AsExpression, diesel::FromSqlRow)]
            #[diesel(foreign_derive, sql_type = diesel::sql_types::Text)]
            #[allow(dead_code)]
            struct Column($ty);
        };

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, DB>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    DB,
                >>::from_sql(bytes)?;
                Ok(text.parse::<$ty>()?)
            }
        }
    )+};
}
pub(crate) use text_columns;

text_columns!(
    LetterKind,
    ReductionState,
    AttachmentKind,
    FileType,
    ParentKind,
    RefusalReason,
    WaiverState,
    ApplicationState,
    CancelReason,
    ClaimReason,
    CreditLevel,
    LookPurpose,
    Dimension,
    Polarity,
    SubjectKind,
    ClaimState,
    GuaranteeState,
    IssuerKind,
    OrgKind,
    PreClaimState,
    ProviderKind,
    Role,
);
