-- +goose Up
-- The cache invalidation log (a transactional outbox, docs/design.md
-- "Invalidation log"). Every change to analyses inserts one row here in the
-- same statement as the change, so a committed change always has its
-- invalidation on record, whichever process or Redis fails afterwards.
--
--   scope         the cache the change is for (the service's CACHE_PREFIX):
--                 instances of one cache apply and announce only its rows
--   analysis_ids  the analyses whose cache entries must be replaced (or,
--                 when deleted, tombstoned at version)
--   owner_ids     their owners: the "analyses" list namespace is bumped and
--                 the tag user:{owner} of each is invalidated
--   version       the version written or deleted (0 for a write-behind
--                 batch: the applier reloads those rows)
--   applied_at    when some process applied it to Redis; NULL while pending.
--                 Applied rows are kept OUTBOX_RETENTION (replayed when Redis
--                 restarts and may have lost the latest writes), then purged.
CREATE TABLE cache_outbox (
    id           bigserial   PRIMARY KEY,
    scope        text        NOT NULL DEFAULT '',
    analysis_ids uuid[]      NOT NULL,
    owner_ids    uuid[]      NOT NULL,
    version      bigint      NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    applied_at   timestamptz NULL
) WITH (fillfactor = 70);

-- No index but the primary key, on purpose: marking a row applied then
-- changes no indexed column, so Postgres updates it in place (a HOT update,
-- room left by the fillfactor) instead of writing new index entries on every
-- write of the service. The sweep, the purge and the replay scan the table,
-- which holds about (write rate x OUTBOX_RETENTION) rows (docs/benchmarks.md).

-- +goose Down
DROP TABLE cache_outbox;
