-- Mail and one-time links: app email templates, reset/deletion tokens, and the outbox.

-- Per-app email templates (minijinja syntax), managed with `usersvc template put`.
CREATE TABLE email_templates (
    app_id text NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    template_id text NOT NULL CHECK (template_id ~ '^[A-Za-z0-9._-]{1,128}$'),
    subject text NOT NULL CHECK (length(subject) <= 1000),
    body_text text NOT NULL CHECK (length(body_text) <= 100000),
    body_html text CHECK (length(body_html) <= 200000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (app_id, template_id)
);

-- One-time secrets behind reset and self-service deletion links. Only SHA-256 of the token is
-- stored (a token carries 256 random bits, so a plain hash cannot be reversed). The hash is the
-- key on its own because the reset page receives nothing but the token.
CREATE TABLE one_time_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    app_id text NOT NULL,
    profile_id uuid NOT NULL,
    purpose text NOT NULL CHECK (purpose IN ('PASSWORD_RESET', 'ACCOUNT_DELETION')),
    -- For resets: the identity whose password the link sets.
    identity_kind text CHECK (identity_kind IN ('EMAIL', 'UNIVERSAL_ID')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    revoked_at timestamptz,
    FOREIGN KEY (app_id, profile_id) REFERENCES profiles (app_id, profile_id) ON DELETE CASCADE,
    CHECK ((purpose = 'PASSWORD_RESET') = (identity_kind IS NOT NULL))
);

CREATE INDEX one_time_tokens_by_profile ON one_time_tokens (app_id, profile_id, purpose)
    WHERE used_at IS NULL AND revoked_at IS NULL;

-- The durable outbox. A mutation commits its message here with its audit event; workers claim
-- due rows with FOR UPDATE SKIP LOCKED and a lease, send, and record the outcome. No live link
-- is ever stored: reset links are minted by the worker at send time (token_expires_at fixes
-- their expiry when the mutation runs), and a rendered message is never written down.
CREATE TABLE outbox (
    app_id text NOT NULL REFERENCES apps (app_id),
    message_id uuid NOT NULL,
    -- The profile the message depends on: when it is gone, the message is dropped unsent.
    -- NULL for messages that outlive their profile (the deletion confirmation).
    profile_id uuid,
    kind text NOT NULL CHECK (kind IN ('PASSWORD_RESET', 'ACCOUNT_CREATED', 'ACCOUNT_DELETED', 'PASSWORD_CHANGED')),
    identity_kind text CHECK (identity_kind IN ('EMAIL', 'UNIVERSAL_ID')),
    recipient text NOT NULL,
    template_id text,
    -- Sender overrides, cc/bcc, categories, ad-hoc subject/body and template variables: never
    -- a secret.
    params jsonb NOT NULL DEFAULT '{}',
    token_expires_at timestamptz,
    status text NOT NULL DEFAULT 'QUEUED' CHECK (status IN ('QUEUED', 'SENT', 'FAILED', 'DROPPED')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    PRIMARY KEY (app_id, message_id),
    CHECK ((kind = 'PASSWORD_RESET') = (token_expires_at IS NOT NULL AND identity_kind IS NOT NULL))
);

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'QUEUED';
CREATE INDEX outbox_by_profile ON outbox (app_id, profile_id, kind, created_at);
