-- Lists filter and sort beyond one organization's newest rows: the operator's lists
-- of every guarantee, claim and mail newest first, and applications narrowed to a
-- project's sections. Without these the count and the page scan the whole table.
CREATE INDEX guarantees_issued_at ON guarantees(issued_at);
CREATE INDEX applications_section ON applications(section_id);
CREATE INDEX claims_filed_at ON claims(filed_at);
CREATE INDEX mail_outbox_created_at ON mail_outbox(created_at);
