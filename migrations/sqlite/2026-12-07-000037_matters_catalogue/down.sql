DROP TABLE record_category_versions;
DROP TABLE record_categories;
DROP TABLE matter_versions;
DROP TABLE matters;
