DROP TABLE credit_waivers;
DROP TABLE credit_rights_codes;
DROP TABLE credit_line_matters;
DROP TABLE credit_lines;
