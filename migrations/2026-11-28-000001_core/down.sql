DROP TABLE audit_events;
DROP TABLE identities;
DROP TABLE profiles;
DROP TABLE apps;
