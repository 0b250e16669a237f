//! Parties: the kinds of organization on the platform and the roles their users hold.

use super::string_enum::string_enum;

string_enum! {
    /// Kind of organization (机构类型).
    pub enum OrgKind ("organization kind") {
        /// A bidder (投标企业) that applies for guarantees.
        Enterprise => "enterprise",
        /// A bank, insurer or guarantor that issues guarantees (出函机构).
        Issuer => "issuer",
        /// A tendering agency (招标代理机构) that runs projects.
        Agency => "agency",
        /// The party that tenders (招标人), beneficiary of the bid bond.
        Tenderee => "tenderee",
        /// A service provider that waives deposits for good credit (免押服务商).
        Provider => "provider",
        /// The exchange operator itself.
        Operator => "operator",
    }
}

string_enum! {
    /// Kind of issuing institution.
    pub enum IssuerKind ("issuer kind") {
        /// Bank guarantee (银行保函).
        Bank => "bank",
        /// Guarantee insurance policy (保证保险).
        Insurer => "insurer",
        /// Guarantee company (担保公司).
        Guarantor => "guarantor",
    }
}

string_enum! {
    /// Kind of deposit-waiving service provider.
    pub enum ProviderKind ("provider kind") {
        /// Hospital (住院押金).
        Hospital => "hospital",
        /// Hotel (住宿押金).
        Hotel => "hotel",
        /// Library (借书押金).
        Library => "library",
        /// Parking.
        Parking => "parking",
        /// Rental apartment (租房押金).
        Apartment => "apartment",
        /// The human resources and social security bureau (农民工工资保证金).
        WageAuthority => "wage_authority",
        /// A project owner or tenderee taking performance bonds (履约保证金).
        ProjectOwner => "project_owner",
        /// The culture and tourism bureau (旅行社质量保证金).
        TourismAuthority => "tourism_authority",
    }
}

string_enum! {
    /// The one role a user holds.
    pub enum Role ("role") {
        /// Staff of the exchange operator.
        Operator => "operator",
        /// Staff of a bidding enterprise.
        Enterprise => "enterprise",
        /// Staff of an issuer.
        Issuer => "issuer",
        /// Staff of a tendering agency.
        Agency => "agency",
        /// Staff of a tenderee.
        Tenderee => "tenderee",
        /// Staff of a service provider.
        Provider => "provider",
        /// A resident (个人) using the deposit-free services; belongs to no organization.
        Person => "person",
    }
}

impl Role {
    /// The organization kind a user with this role belongs to; `None` for a person.
    pub const fn organization_kind(self) -> Option<OrgKind> {
        match self {
            Role::Operator => Some(OrgKind::Operator),
            Role::Enterprise => Some(OrgKind::Enterprise),
            Role::Issuer => Some(OrgKind::Issuer),
            Role::Agency => Some(OrgKind::Agency),
            Role::Tenderee => Some(OrgKind::Tenderee),
            Role::Provider => Some(OrgKind::Provider),
            Role::Person => None,
        }
    }

    /// Whether a user of an organization of `kind` may hold this role.
    ///
    /// Each organization kind has exactly one staff role. A resident (`Person`) works
    /// for nobody: its account is kept in the register of the city's platform, the
    /// operator's organization, which gives it no operator rights (those go by role).
    pub fn allowed_for(self, kind: OrgKind) -> bool {
        match self {
            Role::Person => kind == OrgKind::Operator,
            _ => self.organization_kind() == Some(kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn strings_are_the_documented_snake_case_values() {
        let orgs: Vec<_> = OrgKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            orgs,
            [
                "enterprise",
                "issuer",
                "agency",
                "tenderee",
                "provider",
                "operator"
            ]
        );
        let issuers: Vec<_> = IssuerKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(issuers, ["bank", "insurer", "guarantor"]);
        let providers: Vec<_> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            providers,
            [
                "hospital",
                "hotel",
                "library",
                "parking",
                "apartment",
                "wage_authority",
                "project_owner",
                "tourism_authority"
            ]
        );
        let roles: Vec<_> = Role::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            roles,
            [
                "operator",
                "enterprise",
                "issuer",
                "agency",
                "tenderee",
                "provider",
                "person"
            ]
        );
    }

    #[test]
    fn every_value_round_trips_through_from_str_display_and_json() {
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
                let text = v.to_string();
                assert_eq!(T::from_str(&text).unwrap(), v);
                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(json, format!("\"{text}\""));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
            }
        }
        check(OrgKind::ALL);
        check(IssuerKind::ALL);
        check(ProviderKind::ALL);
        check(Role::ALL);
    }

    #[test]
    fn unknown_or_differently_cased_values_are_refused() {
        let err = OrgKind::from_str("Enterprise").unwrap_err();
        assert_eq!(err.kind, "organization kind");
        assert!(err.to_string().contains("\"Enterprise\""), "{err}");
        assert!(err.to_string().contains("enterprise, issuer"), "{err}");
        assert!(Role::from_str("").is_err());
        assert!(IssuerKind::from_str("bank ").is_err());
        assert!(serde_json::from_str::<ProviderKind>("\"spa\"").is_err());
        assert!(serde_json::from_str::<ProviderKind>("3").is_err());
    }

    #[test]
    fn allowed_roles_match_the_explicit_table() {
        use OrgKind as K;
        // (role, the only organization kind it is allowed for; residents are kept in
        // the operator's register)
        let expected: [(Role, Option<OrgKind>); 7] = [
            (Role::Operator, Some(K::Operator)),
            (Role::Enterprise, Some(K::Enterprise)),
            (Role::Issuer, Some(K::Issuer)),
            (Role::Agency, Some(K::Agency)),
            (Role::Tenderee, Some(K::Tenderee)),
            (Role::Provider, Some(K::Provider)),
            (Role::Person, Some(K::Operator)),
        ];
        assert_eq!(expected.len(), Role::ALL.len());
        for (role, allowed) in expected {
            for &kind in OrgKind::ALL {
                assert_eq!(
                    role.allowed_for(kind),
                    Some(kind) == allowed,
                    "{role} for {kind}"
                );
            }
        }
    }
}
