ALTER TABLE credit_disputes DROP COLUMN kind;
