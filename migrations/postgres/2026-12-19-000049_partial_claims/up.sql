-- Partial payments and extend-or-pay demands (URDG 758 articles 17 and 23).
-- What the issuer has paid under a guarantee, kept with it: the amount outstanding is
-- amount_fen - paid_fen, and the database refuses to pay more than the guarantee.
ALTER TABLE guarantees ADD COLUMN paid_fen BIGINT NOT NULL DEFAULT 0
    CHECK (paid_fen >= 0 AND paid_fen <= amount_fen);
-- What was paid of a claim (at most its amount), and the expiry an extend-or-pay demand
-- asks for.
ALTER TABLE claims ADD COLUMN paid_fen BIGINT CHECK (paid_fen > 0 AND paid_fen <= amount_fen);
ALTER TABLE claims ADD COLUMN extend_to TIMESTAMP;
