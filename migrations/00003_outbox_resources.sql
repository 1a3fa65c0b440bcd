-- +goose Up
-- The invalidation log serves every cached resource, not only analyses
-- (docs/adding-a-resource.md): each change names its resource (the Kind of
-- its cache.Resource), the ids of the entities changed and their groups
-- (for analyses: the owners, whose per-user lists are invalidated).
-- Renaming a column and adding one with a default rewrite nothing.
ALTER TABLE cache_outbox ADD COLUMN resource text NOT NULL DEFAULT 'analysis';
ALTER TABLE cache_outbox RENAME COLUMN analysis_ids TO entity_ids;
ALTER TABLE cache_outbox RENAME COLUMN owner_ids TO group_ids;

-- +goose Down
ALTER TABLE cache_outbox RENAME COLUMN group_ids TO owner_ids;
ALTER TABLE cache_outbox RENAME COLUMN entity_ids TO analysis_ids;
ALTER TABLE cache_outbox DROP COLUMN resource;
