// @generated automatically by Diesel CLI.

diesel::table! {
    apps (app_id) {
        app_id -> Text,
        name -> Text,
        parent_app_id -> Nullable<Text>,
        password_min_length -> Int4,
        password_max_length -> Int4,
        password_min_digits -> Int4,
        password_min_uppercase -> Int4,
        password_min_lowercase -> Int4,
        password_min_symbols -> Int4,
        reset_ttl_minutes -> Int4,
        reset_mails_per_hour -> Int4,
        mail_from -> Nullable<Text>,
        external_auth_types -> Array<Nullable<Text>>,
        public_url -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        mail_per_address_per_hour -> Int4,
        mail_per_app_per_hour -> Int4,
        login_max_failures -> Int4,
        login_failure_window_minutes -> Int4,
    }
}

diesel::table! {
    audit_events (app_id, event_id) {
        app_id -> Text,
        event_id -> Int8,
        profile_id -> Nullable<Uuid>,
        at -> Timestamptz,
        actor -> Text,
        operation -> Text,
        details -> Nullable<Jsonb>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    email_templates (app_id, template_id) {
        app_id -> Text,
        template_id -> Text,
        subject -> Text,
        body_text -> Text,
        body_html -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    identities (app_id, profile_id, kind, external_auth_type) {
        app_id -> Text,
        profile_id -> Uuid,
        kind -> Text,
        external_auth_type -> Text,
        external_id -> Text,
        password_hash -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    login_failures (app_id, kind, external_id) {
        app_id -> Text,
        kind -> Text,
        external_id -> Text,
        failures -> Int4,
        window_started_at -> Timestamptz,
    }
}

diesel::table! {
    one_time_tokens (token_hash) {
        token_hash -> Bytea,
        app_id -> Text,
        profile_id -> Uuid,
        purpose -> Text,
        identity_kind -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    outbox (app_id, message_id) {
        app_id -> Text,
        message_id -> Uuid,
        profile_id -> Nullable<Uuid>,
        kind -> Text,
        identity_kind -> Nullable<Text>,
        recipient -> Text,
        template_id -> Nullable<Text>,
        params -> Jsonb,
        token_expires_at -> Nullable<Timestamptz>,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        lease_token -> Nullable<Uuid>,
    }
}

diesel::table! {
    outbox_recipients (app_id, message_id, position) {
        app_id -> Text,
        message_id -> Uuid,
        position -> Int2,
        address_key -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    profiles (app_id, profile_id) {
        app_id -> Text,
        profile_id -> Uuid,
        user_name -> Nullable<Text>,
        contact_email -> Nullable<Text>,
        country_code -> Nullable<Text>,
        language_code -> Nullable<Text>,
        time_zone_offset -> Nullable<Float8>,
        picture_url -> Nullable<Text>,
        is_tester -> Bool,
        summary_friend_data -> Nullable<Jsonb>,
        parent_app_id -> Nullable<Text>,
        parent_profile_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_login_at -> Nullable<Timestamptz>,
        user_name_key -> Text,
        last_login_key -> Timestamptz,
        status -> Text,
        disabled_at -> Nullable<Timestamptz>,
        disabled_reason -> Nullable<Text>,
        login_count -> Int4,
        version -> Int4,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        secret -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    spent_links (token_hash) {
        token_hash -> Bytea,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(audit_events -> apps (app_id));
diesel::joinable!(email_templates -> apps (app_id));
diesel::joinable!(login_failures -> apps (app_id));
diesel::joinable!(outbox -> apps (app_id));
diesel::joinable!(profiles -> apps (app_id));

diesel::allow_tables_to_appear_in_same_query!(
    apps,
    audit_events,
    email_templates,
    identities,
    login_failures,
    one_time_tokens,
    outbox,
    outbox_recipients,
    profiles,
    server_secrets,
    spent_links,
);
