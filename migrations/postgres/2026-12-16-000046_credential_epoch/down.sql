DROP TRIGGER credential_epoch_organizations_gone ON organizations;
DROP TRIGGER credential_epoch_organizations_changed ON organizations;
DROP TRIGGER credential_epoch_users ON users;
DROP TRIGGER credential_epoch_api_tokens ON api_tokens;
DROP TRIGGER credential_epoch_sessions ON sessions;
DROP FUNCTION credential_epoch_move();
DROP TABLE credential_epoch;
