DROP TABLE trust_store_version;
