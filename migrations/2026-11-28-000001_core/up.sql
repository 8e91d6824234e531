-- The core data model: tenants (apps), profiles, their identities, and the audit trail.
--
-- Every table leads with app_id and every key, unique index and foreign key starts with it,
-- so a query that forgets the tenant cannot use an index and is easy to spot, and no
-- uniqueness ever spans two apps.

-- Tenants: brainCloud's appId. Settings are typed columns (not a JSON bag) so that the
-- database itself refuses a nonsensical policy.
CREATE TABLE apps (
    app_id text PRIMARY KEY CHECK (app_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    parent_app_id text REFERENCES apps (app_id) ON DELETE RESTRICT CHECK (parent_app_id <> app_id),
    password_min_length integer NOT NULL DEFAULT 8,
    password_max_length integer NOT NULL DEFAULT 128,
    password_min_digits integer NOT NULL DEFAULT 0 CHECK (password_min_digits >= 0),
    password_min_uppercase integer NOT NULL DEFAULT 0 CHECK (password_min_uppercase >= 0),
    password_min_lowercase integer NOT NULL DEFAULT 0 CHECK (password_min_lowercase >= 0),
    password_min_symbols integer NOT NULL DEFAULT 0 CHECK (password_min_symbols >= 0),
    reset_ttl_minutes integer NOT NULL DEFAULT 60 CHECK (reset_ttl_minutes BETWEEN 1 AND 43200),
    reset_mails_per_hour integer NOT NULL DEFAULT 5 CHECK (reset_mails_per_hour >= 0),
    mail_from text,
    -- Allowed externalAuthType values; empty means any.
    external_auth_types text[] NOT NULL DEFAULT '{}',
    public_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (password_min_length BETWEEN 1 AND 1024),
    CHECK (password_max_length BETWEEN password_min_length AND 1024)
);

CREATE TABLE profiles (
    app_id text NOT NULL REFERENCES apps (app_id),
    profile_id uuid NOT NULL,
    user_name text,
    contact_email text,
    country_code text,
    language_code text,
    time_zone_offset double precision,
    picture_url text,
    is_tester boolean NOT NULL DEFAULT false,
    summary_friend_data jsonb,
    parent_app_id text,
    parent_profile_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    -- Sort keys for the users connection: NOT NULL so that keyset comparisons on
    -- (key, profile_id) are plain row comparisons an index can serve. Profiles without a
    -- name or a login sort first in ascending order. "C" collation: byte order, the same
    -- on every machine, and prefix ranges that a btree can scan.
    user_name_key text COLLATE "C" NOT NULL GENERATED ALWAYS AS (lower(coalesce(user_name, ''))) STORED,
    last_login_key timestamptz NOT NULL GENERATED ALWAYS AS (coalesce(last_login_at, '0001-01-01 00:00:00+00'::timestamptz)) STORED,
    PRIMARY KEY (app_id, profile_id),
    -- A child profile's parent lives in the parent app. Deleting the parent orphans the child
    -- (deleteUser with deleteChildren removes children explicitly, in the same transaction).
    CONSTRAINT profiles_parent_fkey FOREIGN KEY (parent_app_id, parent_profile_id)
        REFERENCES profiles (app_id, profile_id) ON DELETE SET NULL,
    CHECK ((parent_app_id IS NULL) = (parent_profile_id IS NULL))
);

CREATE INDEX profiles_by_created ON profiles (app_id, created_at, profile_id);
CREATE INDEX profiles_by_user_name ON profiles (app_id, user_name_key, profile_id);
CREATE INDEX profiles_by_last_login ON profiles (app_id, last_login_key, profile_id);
CREATE INDEX profiles_by_contact_email ON profiles (app_id, lower(contact_email));
CREATE INDEX profiles_by_parent ON profiles (parent_app_id, parent_profile_id)
    WHERE parent_profile_id IS NOT NULL;

CREATE TABLE identities (
    app_id text NOT NULL,
    profile_id uuid NOT NULL,
    kind text NOT NULL CHECK (kind IN ('EMAIL', 'UNIVERSAL_ID', 'EXTERNAL')),
    -- '' for EMAIL and UNIVERSAL_ID, so that the unique keys below need no NULL handling.
    external_auth_type text NOT NULL DEFAULT '',
    external_id text NOT NULL,
    password_hash text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- At most one identity of each kind (for EXTERNAL: of each externalAuthType) per profile.
    PRIMARY KEY (app_id, profile_id, kind, external_auth_type),
    FOREIGN KEY (app_id, profile_id) REFERENCES profiles (app_id, profile_id) ON DELETE CASCADE,
    CHECK ((kind = 'EXTERNAL') = (external_auth_type <> '')),
    CHECK (kind <> 'EXTERNAL' OR password_hash IS NULL)
);

-- An identity is unique within an app, never across apps. Concurrent creates of the same
-- identity race on this index; exactly one wins and the others map to USER_ALREADY_EXISTS.
CREATE UNIQUE INDEX identities_external_key ON identities (app_id, kind, external_auth_type, external_id);

-- The audit trail outlives the profiles it speaks of: no foreign key to profiles.
CREATE TABLE audit_events (
    app_id text NOT NULL REFERENCES apps (app_id),
    event_id bigint GENERATED ALWAYS AS IDENTITY,
    profile_id uuid,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    operation text NOT NULL,
    details jsonb,
    request_id text,
    PRIMARY KEY (app_id, event_id)
);

CREATE INDEX audit_events_by_profile ON audit_events (app_id, profile_id, event_id);
