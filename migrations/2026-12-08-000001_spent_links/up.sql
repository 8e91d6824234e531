-- Links that did their work and took their rows with them. A deletion link deletes its profile,
-- and the profile's tokens go with it (ON DELETE CASCADE), so a second click on that link (or
-- one that lost the race to the first) would find nothing and be told the link is not valid.
-- Its hash is kept here until the link would have expired, so that click is told the link was
-- already used. Only the SHA-256 hash of the token, as in one_time_tokens; no app, no profile.
CREATE TABLE spent_links (
    token_hash bytea PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- Rows past their expiry are pruned by later inserts.
CREATE INDEX spent_links_by_expiry ON spent_links (expires_at);

GRANT SELECT, INSERT, DELETE ON spent_links TO usersvc_server;
