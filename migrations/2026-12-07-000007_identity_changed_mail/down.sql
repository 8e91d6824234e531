-- Notices of the new kind cannot stay under the old constraint: they go.
DELETE FROM outbox WHERE kind = 'IDENTITY_CHANGED';
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN (
    'PASSWORD_RESET', 'ACCOUNT_CREATED', 'ACCOUNT_DELETED', 'PASSWORD_CHANGED'));
