DROP TABLE guarantee_letters;
DROP TABLE guarantee_reductions;
