-- +goose Up
-- The invalidation log serves every cached resource, not only analyses
-- (docs/adding-a-resource.md): each change names its resource (the Kind of
-- its cache.Resource). analysis_ids and owner_ids keep their names and now
-- hold the ids of the entities changed and of their groups, whatever the
-- resource: renaming them would break every instance of the previous release
-- still running during a rolling upgrade (its write statements name them),
-- while a new column with a default does not. A change such an instance
-- logs is an analysis change, which is what the default says.
-- Adding a column with a constant default rewrites nothing.
ALTER TABLE cache_outbox ADD COLUMN resource text NOT NULL DEFAULT 'analysis';
COMMENT ON COLUMN cache_outbox.analysis_ids IS 'the ids of the entities changed, of any resource (named before resources existed)';
COMMENT ON COLUMN cache_outbox.owner_ids IS 'the groups of the entities changed (for analyses, their owners)';

-- +goose Down
COMMENT ON COLUMN cache_outbox.analysis_ids IS NULL;
COMMENT ON COLUMN cache_outbox.owner_ids IS NULL;
ALTER TABLE cache_outbox DROP COLUMN resource;
