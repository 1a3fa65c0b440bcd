package repository

import (
	"context"
	"strings"
	"time"

	"github.com/analysis-cache/service/domain"
)

// insertUnnestSQL inserts a whole batch as one statement with twelve array
// parameters, one per column, whatever the batch size: no 65535-parameter
// limit, one prepared statement (the text never changes, so pgx prepares it
// once per connection and Postgres reuses the plan), binary encoding. Tags
// travel as array literals ('{"a","b"}'), one per row, cast back by
// Postgres: unnest cannot take a ragged two-dimensional array.
const insertUnnestSQL = `INSERT INTO analyses (` + columns + `)
SELECT id, owner_id, url, title, status, summary, score, tags::text[], notes, version, created_at, updated_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::float8[],
            $8::text[], $9::text[], $10::int8[], $11::timestamptz[], $12::timestamptz[])
  AS t(` + columns + `)
ON CONFLICT (id) DO NOTHING RETURNING id`

// LogBatchCTE returns the data-modifying CTE, named "o", that records in the
// invalidation log ONE change for all the rows the CTE named "w" returned
// (their id and groupColumn columns; version 0: the log reloads them), and
// none when w returned no row: append it to a multi-row write (a bulk
// insert) and select (SELECT id FROM o) for the log's id of the change.
// scopeParam must be Postgres.Scope(); the columns are uuids, as for
// LogChangeCTE.
func LogBatchCTE(resource, groupColumn, scopeParam string) string {
	return `, o AS (
  INSERT INTO cache_outbox (scope, resource, analysis_ids, owner_ids, version)
  SELECT ` + scopeParam + `::text, '` + resource + `', array_agg(w.id), array_agg(DISTINCT w.` + groupColumn + `), 0 FROM w HAVING count(*) > 0
  RETURNING id)`
}

// insertLoggedSQL is insertUnnestSQL plus the row of the invalidation log
// that records the rows it inserted (none when it inserted nothing), in the
// same statement. Every returned row carries the log row's id.
var insertLoggedSQL = `WITH w AS (` + insertUnnestSQL + `, owner_id)` +
	LogBatchCTE(domain.AnalysisKind, "owner_id", "$13") + `
SELECT w.id, (SELECT id FROM o) FROM w`

// unnestColumns is a batch laid out column by column, the parameters of
// insertUnnestSQL.
type unnestColumns struct {
	id, owner          [][16]byte // not uuid.UUID: pgx would encode that through its driver.Valuer, as text
	url, title, status []string
	summary, notes     []*string
	score              []*float64
	tags               []string // array literals
	version            []int64
	created, updated   []time.Time
}

// newUnnestColumns lays rows (normalized by prepareItems) out as columns.
func newUnnestColumns(rows []analysisRow) *unnestColumns {
	n := len(rows)
	c := &unnestColumns{
		id: make([][16]byte, n), owner: make([][16]byte, n),
		url: make([]string, n), title: make([]string, n), status: make([]string, n),
		summary: make([]*string, n), notes: make([]*string, n), score: make([]*float64, n),
		tags: make([]string, n), version: make([]int64, n),
		created: make([]time.Time, n), updated: make([]time.Time, n),
	}
	var lit strings.Builder
	for i := range rows {
		r := &rows[i]
		c.id[i], c.owner[i] = r.ID, r.OwnerID
		c.url[i], c.title[i], c.status[i] = r.URL, r.Title, string(r.Status)
		c.summary[i], c.notes[i], c.score[i] = r.Summary, r.Notes, r.Score
		c.version[i], c.created[i], c.updated[i] = r.Version, r.CreatedAt, r.UpdatedAt
		lit.Reset()
		appendTextArrayLiteral(&lit, r.Tags)
		c.tags[i] = lit.String()
	}
	return c
}

// args are the statement's parameters in order.
func (c *unnestColumns) args() []any {
	return []any{c.id, c.owner, c.url, c.title, c.status, c.summary, c.score,
		c.tags, c.notes, c.version, c.created, c.updated}
}

// appendTextArrayLiteral writes tags as a text[] literal with every element
// quoted (so no element reads as NULL or splits), as textArray.Value does.
func appendTextArrayLiteral(b *strings.Builder, tags []string) {
	b.WriteByte('{')
	for i, s := range tags {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
}

// logStatementFailed logs a failed pgx statement as the gorm logger does:
// error level, SQL with its $n placeholders and never the bound values.
func (p *Postgres) logStatementFailed(ctx context.Context, sql string, err error) {
	if expected(err) {
		return
	}
	p.log.ErrorContext(ctx, "postgres statement failed", "sql", sql, "err", err)
}
