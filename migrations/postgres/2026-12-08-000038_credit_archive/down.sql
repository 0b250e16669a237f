DROP TABLE credit_level_changes;
DROP TABLE credit_records;
DROP TABLE credit_subjects;
