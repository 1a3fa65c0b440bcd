package repository

import (
	"context"

	"github.com/analysis-cache/service/domain"
)

// statsRow is one row of the stats query: the totals repeated on every row,
// and one of the top tags (NULL tag when there are none).
type statsRow struct {
	Total      int64    `gorm:"column:total"`
	Pending    int64    `gorm:"column:pending"`
	Processing int64    `gorm:"column:processing"`
	Completed  int64    `gorm:"column:completed"`
	Failed     int64    `gorm:"column:failed"`
	AvgScore   *float64 `gorm:"column:avg_score"`
	Tag        *string  `gorm:"column:tag"`
	TagCount   int64    `gorm:"column:tag_count"`
}

// statsSQL aggregates in two scans and one round trip: one pass computes the
// total, the four status counts (FILTER) and avg(score) (NULL when no row
// has a score); a second pass unnests tags for the top ten. Tags order by
// count DESC, then tag in byte order (COLLATE "C"), matching Go's string
// order whatever the database's collation.
const statsSQL = `
WITH counts AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE status = 'pending')    AS pending,
           count(*) FILTER (WHERE status = 'processing') AS processing,
           count(*) FILTER (WHERE status = 'completed')  AS completed,
           count(*) FILTER (WHERE status = 'failed')     AS failed,
           avg(score) AS avg_score
    FROM analyses
), top AS (
    SELECT t.tag COLLATE "C" AS tag, count(*) AS tag_count
    FROM analyses a CROSS JOIN LATERAL unnest(a.tags) AS t(tag)
    GROUP BY 1
    ORDER BY tag_count DESC, 1 ASC
    LIMIT 10
)
SELECT counts.*, top.tag, coalesce(top.tag_count, 0) AS tag_count
FROM counts LEFT JOIN top ON true
ORDER BY top.tag_count DESC, top.tag ASC`

// Stats aggregates over all analyses: total, counts by status (all four,
// zero included), average score (nil when no analysis has one) and the ten
// most used tags. ComputedAt is the time the query returned.
func (p *Postgres) Stats(ctx context.Context) (*domain.Stats, error) {
	var rows []statsRow
	if err := query(p.db.WithContext(ctx), &rows, statsSQL); err != nil {
		return nil, translate("compute stats", err)
	}
	s := &domain.Stats{ByStatus: make(map[domain.Status]int64, len(domain.Statuses)), TopTags: []domain.TagCount{}}
	for _, st := range domain.Statuses {
		s.ByStatus[st] = 0
	}
	if len(rows) > 0 { // counts always yields exactly one row; guard anyway
		r := rows[0]
		s.Total, s.AvgScore = r.Total, r.AvgScore
		s.ByStatus[domain.StatusPending] = r.Pending
		s.ByStatus[domain.StatusProcessing] = r.Processing
		s.ByStatus[domain.StatusCompleted] = r.Completed
		s.ByStatus[domain.StatusFailed] = r.Failed
	}
	for _, r := range rows {
		if r.Tag != nil {
			s.TopTags = append(s.TopTags, domain.TagCount{Tag: *r.Tag, Count: r.TagCount})
		}
	}
	s.ComputedAt = now()
	return s, nil
}
