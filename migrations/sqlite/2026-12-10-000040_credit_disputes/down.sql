DROP TABLE credit_disputes;
