-- A new kind of mail: the notice to an old email address that changeIdentity replaced it.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN (
    'PASSWORD_RESET', 'ACCOUNT_CREATED', 'ACCOUNT_DELETED', 'PASSWORD_CHANGED', 'IDENTITY_CHANGED'));
