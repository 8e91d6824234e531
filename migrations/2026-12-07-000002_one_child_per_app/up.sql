-- A parent profile has at most one child in each child app, as in brainCloud, so a profile's
-- children are bounded by the number of its app's child apps (and so is every response that
-- lists them).
--
-- Existing data may hold more: of the children one parent has in one child app, the oldest
-- (by createdAt, then profileId) keeps its parent; every other one keeps existing but loses
-- its parentProfileId, exactly as a child does when its parent is deleted without
-- deleteChildren. This cannot be undone by the down migration.
UPDATE profiles p
   SET parent_app_id = NULL, parent_profile_id = NULL, updated_at = now()
  FROM (SELECT app_id, profile_id,
               row_number() OVER (PARTITION BY app_id, parent_app_id, parent_profile_id
                                  ORDER BY created_at, profile_id) AS rank
          FROM profiles
         WHERE parent_profile_id IS NOT NULL) ranked
 WHERE p.app_id = ranked.app_id AND p.profile_id = ranked.profile_id AND ranked.rank > 1;

-- Concurrent attaches of two children race on this index; exactly one wins (DUPLICATE_CHILD
-- for the others). It also serves the lookup of a parent's children.
CREATE UNIQUE INDEX profiles_one_child_per_app ON profiles (parent_app_id, parent_profile_id, app_id)
    WHERE parent_profile_id IS NOT NULL;
DROP INDEX profiles_by_parent;
