DROP TABLE issuer_credit_rules;
