DROP TABLE credit_looks;
