ALTER TABLE claims DROP COLUMN attachment_count;
ALTER TABLE applications DROP COLUMN attachment_count;
DROP TABLE attachments;
DROP TABLE attachment_blobs;
