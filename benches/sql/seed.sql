-- Seeds profiles :lo..:hi of the app 'bench' with their identities, in one statement.
-- psql -v lo=1 -v hi=100000 -f seed.sql
--
-- Every profile has an EMAIL identity with a (fixed, real-looking) argon2id hash; one in five
-- also has an EXTERNAL one, so `identities` returns one or two rows. created_at is strictly
-- increasing and distinct (30 s apart plus under 29 s of jitter, about a year for 1M), and
-- updated_at/last_login_at follow it; the sort keys are generated columns the table computes.
\set ON_ERROR_STOP on
WITH p AS (
    INSERT INTO profiles (app_id, profile_id, user_name, contact_email, country_code,
                          language_code, time_zone_offset, picture_url, is_tester,
                          created_at, updated_at, last_login_at)
    SELECT 'bench', gen_random_uuid(),
           (ARRAY['Alice','Bob','Chloé','Dmitri','Emma','Farid','Grace','Hiro','Inès','Jonas',
                  'Kofi','Lena','Mateo','Nina','Oskar','Priya','Quinn','Rosa','Sven','Yuki'])[1 + g % 20]
             || ' ' || (ARRAY['Smith','Martin','Müller','Tanaka','Silva','Kumar','Dubois','Rossi'])[1 + (g / 20) % 8]
             || ' ' || g,
           'user' || g || '@example.com',
           (ARRAY['US','GB','FR','DE','JP','BR','CA','IN'])[1 + g % 8],
           (ARRAY['en','en','fr','de','ja','pt','en','hi'])[1 + g % 8],
           ((g % 25) - 12)::float8,
           CASE WHEN g % 4 = 0 THEN 'https://cdn.example.com/avatars/' || g || '.png' END,
           g % 50 = 0,
           t.created, t.created + (g % 97) * interval '1 hour',
           CASE WHEN g % 3 <> 0 THEN t.created + (g % 89) * interval '1 day' END
      FROM generate_series(:lo::int, :hi::int) g,
           LATERAL (SELECT timestamptz '2025-01-01 00:00:00+00' + g * interval '30 seconds'
                           + (random() * 29000)::int * interval '1 millisecond' AS created) t
    RETURNING app_id, profile_id, contact_email, created_at
)
INSERT INTO identities (app_id, profile_id, kind, external_auth_type, external_id, password_hash,
                        created_at, updated_at)
SELECT app_id, profile_id, 'EMAIL', '', contact_email,
       '$argon2id$v=19$m=19456,t=2,p=1$c2VlZGVkLXNhbHQtMTIzNA$3hHjqoaYwQ0wP8ouSc9v7Gm7yC4k5aY9o0YbGkQ8F0w',
       created_at, created_at
  FROM p
UNION ALL
SELECT app_id, profile_id, 'EXTERNAL', 'facebook', 'fb-' || md5(profile_id::text), NULL,
       created_at + interval '1 minute', created_at + interval '1 minute'
  FROM p
 WHERE get_byte(uuid_send(profile_id), 15) < 52;
