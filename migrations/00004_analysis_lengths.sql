-- +goose NO TRANSACTION
-- +goose Up
-- The length rules of the analyses' fields (domain/rules.go), enforced by
-- Postgres too: url 1..2048 and title 1..200 characters, summary at most
-- 10000, notes at most 2000, tags at most 20 items of 1..50 characters
-- each (and no NULL item). char_length counts code points in a UTF8
-- database, as Pydantic and the API count characters. The url pattern stays
-- with the API: Postgres's regular expressions are not Pydantic's (Rust's
-- regex crate), so a CHECK could refuse a url the API accepts.
-- migrations/rules_test.go proves every bound against the declarations.
--
-- Why NO TRANSACTION: ADD CONSTRAINT ... NOT VALID takes an ACCESS
-- EXCLUSIVE lock on analyses but scans nothing, so it is held for an
-- instant; VALIDATE CONSTRAINT scans the table under a SHARE UPDATE
-- EXCLUSIVE lock, which lets reads and writes go on. In one transaction
-- (goose's default) the first lock would be held until the commit, through
-- every scan, and reads and writes would wait for the whole of it. Run
-- statement by statement instead, each in its own transaction, every step
-- can be run again: the function is CREATE OR REPLACE, each ADD drops the
-- constraint of that name first in the same statement, and validating a
-- valid constraint does nothing. Should goose stop halfway (a crash, or a
-- stored row breaking a rule, which VALIDATE names), the constraints added
-- so far already refuse new rows that break them; fix the rows and start
-- again: goose records the version only after the last statement, so it
-- runs the whole file again.

-- analysis_tags_ok reports whether every tag is a string of 1..50
-- characters (NULL for NULL tags, which NOT NULL refuses). A CHECK cannot
-- hold a subquery, a function can. PL/pgSQL rather than SQL: per call it
-- costs about a third of `NOT EXISTS (SELECT FROM unnest(tags) ...)`
-- (docs/postgres.md, "Length constraints").
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION analysis_tags_ok(tags text[]) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    tag text;
BEGIN
    FOREACH tag IN ARRAY tags LOOP
        IF tag IS NULL OR char_length(tag) NOT BETWEEN 1 AND 50 THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END
$$;
-- +goose StatementEnd

-- analyses_tags_items_check calls analysis_tags_ok only when a shortcut
-- made of built-in functions cannot tell: no tag is NULL or empty and all
-- of them together hold at most 50 bytes, so none has more than 50
-- characters. The shortcut implies the rule, so the CHECK is exactly the
-- rule; it spares most rows the function call.
ALTER TABLE analyses
    DROP CONSTRAINT IF EXISTS analyses_url_length_check,
    ADD CONSTRAINT analyses_url_length_check
        CHECK (char_length(url) BETWEEN 1 AND 2048) NOT VALID,
    DROP CONSTRAINT IF EXISTS analyses_title_length_check,
    ADD CONSTRAINT analyses_title_length_check
        CHECK (char_length(title) BETWEEN 1 AND 200) NOT VALID,
    DROP CONSTRAINT IF EXISTS analyses_summary_length_check,
    ADD CONSTRAINT analyses_summary_length_check
        CHECK (char_length(summary) <= 10000) NOT VALID,
    DROP CONSTRAINT IF EXISTS analyses_notes_length_check,
    ADD CONSTRAINT analyses_notes_length_check
        CHECK (char_length(notes) <= 2000) NOT VALID,
    DROP CONSTRAINT IF EXISTS analyses_tags_length_check,
    ADD CONSTRAINT analyses_tags_length_check
        CHECK (cardinality(tags) <= 20) NOT VALID,
    DROP CONSTRAINT IF EXISTS analyses_tags_items_check,
    ADD CONSTRAINT analyses_tags_items_check
        CHECK ((('' <> ALL (tags)) IS TRUE AND octet_length(array_to_string(tags, '')) <= 50)
               OR analysis_tags_ok(tags)) NOT VALID;

ALTER TABLE analyses VALIDATE CONSTRAINT analyses_url_length_check;
ALTER TABLE analyses VALIDATE CONSTRAINT analyses_title_length_check;
ALTER TABLE analyses VALIDATE CONSTRAINT analyses_summary_length_check;
ALTER TABLE analyses VALIDATE CONSTRAINT analyses_notes_length_check;
ALTER TABLE analyses VALIDATE CONSTRAINT analyses_tags_length_check;
ALTER TABLE analyses VALIDATE CONSTRAINT analyses_tags_items_check;

-- +goose Down
ALTER TABLE analyses
    DROP CONSTRAINT IF EXISTS analyses_url_length_check,
    DROP CONSTRAINT IF EXISTS analyses_title_length_check,
    DROP CONSTRAINT IF EXISTS analyses_summary_length_check,
    DROP CONSTRAINT IF EXISTS analyses_notes_length_check,
    DROP CONSTRAINT IF EXISTS analyses_tags_length_check,
    DROP CONSTRAINT IF EXISTS analyses_tags_items_check;
DROP FUNCTION IF EXISTS analysis_tags_ok(text[]);
