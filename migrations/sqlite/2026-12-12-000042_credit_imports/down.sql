DROP TABLE credit_imports;
