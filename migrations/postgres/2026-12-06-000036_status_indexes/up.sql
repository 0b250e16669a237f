-- The home pages count a party's guarantees and applications by state, and the
-- issuer's claims waiting for a decision: with the state in the index the counts are
-- read from the index alone instead of every row of the party.
CREATE INDEX guarantees_enterprise_status ON guarantees(enterprise_id, status);
CREATE INDEX guarantees_issuer_status ON guarantees(issuer_id, status);
CREATE INDEX applications_enterprise_status ON applications(enterprise_id, status);
CREATE INDEX claims_status_guarantee ON claims(status, guarantee_id);
-- The issuer's amendments to sign: its guarantees whose application has a newer draft,
-- read from this index and the drafts' (application_id, version) index alone.
CREATE INDEX guarantees_issuer_application_version
    ON guarantees(issuer_id, application_id, current_version);
