DROP POLICY tenant ON outbox_recipients;
DROP TABLE outbox_recipients;
ALTER TABLE outbox DROP COLUMN lease_token;
ALTER TABLE apps DROP COLUMN mail_per_app_per_hour, DROP COLUMN mail_per_address_per_hour;
