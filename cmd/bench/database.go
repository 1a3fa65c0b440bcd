package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/scratch"
)

// database is the benchmark's own Postgres database, created on the server
// of DATABASE_URL and dropped by drop.
type database struct {
	adminURL string // the server's maintenance database
	name     string
	url      string // the bench database
	conn     *pgx.Conn
}

// createDatabase creates bench_<random> on the server of adminURL.
func createDatabase(ctx context.Context, adminURL string) (*database, error) {
	d := &database{adminURL: adminURL, name: scratch.Name("bench_")}
	var err error
	if d.url, err = scratch.CreateDatabase(ctx, adminURL, d.name); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	return d, nil
}

// connect opens the connection used for seeding and checks, once the
// server has migrated the schema.
func (d *database) connect(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		return fmt.Errorf("connect %s: %w", d.name, err)
	}
	d.conn = conn
	return nil
}

// drop removes the database, closing whatever is still connected to it.
func (d *database) drop(ctx context.Context) error {
	if d.conn != nil {
		d.conn.Close(ctx)
	}
	return scratch.DropDatabase(ctx, d.adminURL, d.name)
}

// count returns the number of rows in analyses.
func (d *database) count(ctx context.Context) (int64, error) {
	var n int64
	if err := d.conn.QueryRow(ctx, "SELECT count(*) FROM analyses").Scan(&n); err != nil {
		return 0, fmt.Errorf("count analyses: %w", err)
	}
	return n, nil
}

var analysisColumns = []string{"id", "owner_id", "url", "title", "status", "summary", "score", "tags", "notes", "version", "created_at", "updated_at"}

// rows generates analyses shaped like real ones: 1000 owners, the four
// statuses, a summary on half, a score on most, one to three of 50 tags,
// created a second apart going back from now.
type rows struct {
	owners []uuid.UUID
	base   time.Time
	n      int
}

func newRows() *rows {
	r := &rows{owners: make([]uuid.UUID, 1000), base: time.Now().UTC().Truncate(time.Microsecond)}
	for i := range r.owners {
		r.owners[i] = uuid.New()
	}
	return r
}

// next returns the values of one new row in analysisColumns order.
func (r *rows) next(id uuid.UUID) []any {
	i := r.n
	r.n++
	var summary *string
	if i%2 == 0 {
		s := fmt.Sprintf("Summary of analysis %d: the page loads in %d ms and links to %d pages.", i, 100+i%900, i%40)
		summary = &s
	}
	var score *float64
	if i%10 != 0 {
		s := float64(i%1000) / 1000
		score = &s
	}
	tags := []string{fmt.Sprintf("t%d", i%50)}
	if i%3 != 0 {
		tags = append(tags, fmt.Sprintf("t%d", (i/50)%50+50))
	}
	if i%7 == 0 {
		tags = append(tags, "bench")
	}
	created := r.base.Add(-time.Duration(i) * time.Second)
	return []any{id, r.owners[i%len(r.owners)], fmt.Sprintf("https://example.com/pages/%d", i),
		fmt.Sprintf("Analysis %d", i), string(domain.Statuses[i%len(domain.Statuses)]), summary, score, tags, nil, int64(1), created, created}
}

// copyRows inserts n generated rows into analyses with one pgx CopyFrom and
// returns their ids. With progress it draws a progress bar on stderr.
func (d *database) copyRows(ctx context.Context, gen *rows, n int, progress string) ([]uuid.UUID, time.Duration, error) {
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	bar := newProgressBar(progress, n)
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		row := gen.next(ids[i])
		i++
		bar.set(i)
		return row, nil
	})
	start := time.Now()
	copied, err := d.conn.CopyFrom(ctx, pgx.Identifier{"analyses"}, analysisColumns, src)
	elapsed := time.Since(start)
	bar.finish()
	if err != nil {
		return nil, 0, fmt.Errorf("copy %d rows into analyses: %w", n, err)
	}
	if copied != int64(n) {
		return nil, 0, fmt.Errorf("copy into analyses: %d of %d rows", copied, n)
	}
	return ids, elapsed, nil
}

// progressBar redraws one stderr line at each whole percent on a terminal;
// elsewhere (CI logs) it prints only the final line. Silent without a label.
type progressBar struct {
	label      string
	total, pct int
	start      time.Time
	redraw     bool
}

func newProgressBar(label string, total int) *progressBar {
	fi, err := os.Stderr.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return &progressBar{label: label, total: total, pct: -1, start: time.Now(), redraw: tty}
}

func (p *progressBar) set(done int) {
	if p.label == "" || (!p.redraw && done < p.total) {
		return
	}
	pct := done * 100 / p.total
	if pct == p.pct {
		return
	}
	p.pct = pct
	fmt.Fprintf(os.Stderr, "\r%-28s [%-40s] %3d%% %d/%d", p.label, strings.Repeat("#", pct*40/100), pct, done, p.total)
}

func (p *progressBar) finish() {
	if p.label == "" {
		return
	}
	fmt.Fprintf(os.Stderr, "  %.1fs\n", time.Since(p.start).Seconds())
}
