CREATE INDEX profiles_by_parent ON profiles (parent_app_id, parent_profile_id)
    WHERE parent_profile_id IS NOT NULL;
DROP INDEX profiles_one_child_per_app;
