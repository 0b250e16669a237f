DROP TABLE premium_terms;
