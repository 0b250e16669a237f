DROP INDEX claims_status_guarantee;
DROP INDEX applications_enterprise_status;
DROP INDEX guarantees_issuer_status;
DROP INDEX guarantees_enterprise_status;
