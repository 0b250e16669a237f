DROP INDEX applications_one_live_per_section;
ALTER TABLE applications DROP COLUMN live;
