DROP INDEX mail_outbox_created_at;
DROP INDEX claims_filed_at;
DROP INDEX applications_section;
DROP INDEX guarantees_issued_at;
