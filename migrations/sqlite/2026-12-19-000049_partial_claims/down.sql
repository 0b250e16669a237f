ALTER TABLE claims DROP COLUMN extend_to;
ALTER TABLE claims DROP COLUMN paid_fen;
ALTER TABLE guarantees DROP COLUMN paid_fen;
