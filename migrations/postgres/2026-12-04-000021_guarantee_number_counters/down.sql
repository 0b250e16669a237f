DROP TABLE guarantee_number_counters;
