-- Mail that cannot be turned into a relay, and an outbox any number of instances can share.
--
-- Per app: how many mails one recipient address (normalised: NFKC, trimmed, lower-cased) and
-- the whole app may be sent in any hour, cc and bcc recipients counted. 0 stops that mail.
ALTER TABLE apps
    ADD COLUMN mail_per_address_per_hour integer NOT NULL DEFAULT 10
        CHECK (mail_per_address_per_hour BETWEEN 0 AND 1000),
    ADD COLUMN mail_per_app_per_hour integer NOT NULL DEFAULT 1000
        CHECK (mail_per_app_per_hour BETWEEN 0 AND 1000000);

-- Who holds a message: a fresh token per claim. Only the holder's outcome is recorded, so a
-- worker whose lease ran out while it was sending cannot overwrite the one that took over.
ALTER TABLE outbox ADD COLUMN lease_token uuid;

-- Every recipient of every queued message (To, then each Cc and Bcc), by normalised address:
-- what the per-address and per-app limits count. Messages dropped when they were asked for
-- (over a limit) have none: they were never sent.
CREATE TABLE outbox_recipients (
    app_id text NOT NULL,
    message_id uuid NOT NULL,
    position smallint NOT NULL CHECK (position >= 0),
    address_key text NOT NULL CHECK (length(address_key) BETWEEN 1 AND 1024),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, message_id, position),
    FOREIGN KEY (app_id, message_id) REFERENCES outbox (app_id, message_id) ON DELETE CASCADE
);

CREATE INDEX outbox_recipients_by_address ON outbox_recipients (app_id, address_key, created_at);
CREATE INDEX outbox_recipients_by_app ON outbox_recipients (app_id, created_at);

-- The server's role reads and writes it, behind the same row-level security as every table
-- with app_id.
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_recipients TO usersvc_server;
ALTER TABLE outbox_recipients ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant ON outbox_recipients USING (usersvc_visible(app_id)) WITH CHECK (usersvc_visible(app_id));
