-- +goose Up
-- The analyses table. The status enum, the score bounds, the version floor
-- and nullability are repeated here as constraints, so a bug above cannot
-- store a row with them broken; the length limits are added by
-- 00004_analysis_lengths.sql, and the url pattern is left to the API.
-- migrations/rules_test.go proves the constraints against the field
-- declarations (domain/rules.go), boundary value by boundary value.
CREATE TABLE analyses (
    id         uuid             PRIMARY KEY,
    owner_id   uuid             NOT NULL,
    url        text             NOT NULL,
    title      text             NOT NULL,
    status     text             NOT NULL
        CONSTRAINT analyses_status_check
        CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    summary    text             NULL,
    score      double precision NULL
        CONSTRAINT analyses_score_check CHECK (score >= 0 AND score <= 1),
    tags       text[]           NOT NULL DEFAULT '{}',
    notes      text             NULL,
    version    bigint           NOT NULL DEFAULT 1
        CONSTRAINT analyses_version_check CHECK (version >= 1),
    created_at timestamptz      NOT NULL,
    updated_at timestamptz      NOT NULL
);

-- Unfiltered list: ORDER BY created_at DESC, id DESC LIMIT n is an index scan
-- that stops after skip+limit rows.
CREATE INDEX analyses_created_id_idx ON analyses (created_at DESC, id DESC);

-- owner_id filter (user lists, read-through): equality prefix + the list order,
-- so the page is read in order without a sort.
CREATE INDEX analyses_owner_created_id_idx ON analyses (owner_id, created_at DESC, id DESC);

-- status filter: same shape as the owner index.
CREATE INDEX analyses_status_created_id_idx ON analyses (status, created_at DESC, id DESC);

-- tag filter: the queries use `tags @> ARRAY[$1]`, which this GIN index serves
-- (`$1 = ANY(tags)` would not use it).
CREATE INDEX analyses_tags_gin_idx ON analyses USING GIN (tags);

-- +goose Down
DROP TABLE analyses;
