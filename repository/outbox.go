package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/analysis-cache/service/cache/outbox"
	"github.com/analysis-cache/service/domain"
)

// The invalidation log (cache_outbox, migrations/00002 and 00003) as the
// cache reads it: Postgres implements outbox.Store (outbox.ChangeStore) for every resource
// of its scope. Rows are inserted by the write statements (LogChangeCTE,
// insert_unnest.go), never here.
var _ outbox.Store = (*Postgres)(nil)

// Scope is the scope this repository's changes are logged under (the
// cache's prefix, Options.ChangeScope): the parameter a write statement
// passes to LogChangeCTE.
func (p *Postgres) Scope() string { return p.scope }

// channel is the LISTEN/NOTIFY channel of the log's scope:
// "cache_outbox_" and 16 hex characters of the scope's SHA-256 (a valid
// identifier whatever the scope). A payload is the comma-separated ids of
// changes their writer could not apply.
func (p *Postgres) channel() string {
	sum := sha256.Sum256([]byte(p.scope))
	return "cache_outbox_" + hex.EncodeToString(sum[:8])
}

const changeColumns = "id, resource, analysis_ids, owner_ids, version, deleted"

// Pending returns up to limit unapplied changes of kinds (nil: all) at
// least minAge old, oldest first.
func (p *Postgres) Pending(ctx context.Context, kinds []string, minAge time.Duration, limit int) ([]outbox.Change, error) {
	return p.changes(ctx, "pending changes", `SELECT `+changeColumns+` FROM cache_outbox
		WHERE scope = $3 AND ($4::text[] IS NULL OR resource = ANY($4::text[]))
		  AND applied_at IS NULL AND created_at <= clock_timestamp() - $1::interval ORDER BY id LIMIT $2`,
		interval(minAge), limit, p.scope, kinds)
}

// Retained returns every change of kinds (nil: all) not applied yet or
// applied within since, oldest first.
func (p *Postgres) Retained(ctx context.Context, kinds []string, since time.Duration) ([]outbox.Change, error) {
	return p.changes(ctx, "retained changes", `SELECT `+changeColumns+` FROM cache_outbox
		WHERE scope = $2 AND ($3::text[] IS NULL OR resource = ANY($3::text[]))
		  AND (applied_at IS NULL OR applied_at > clock_timestamp() - $1::interval) ORDER BY id`, interval(since), p.scope, kinds)
}

// MarkApplied sets applied_at on ids.
func (p *Postgres) MarkApplied(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return p.exec(ctx, "mark changes applied",
		`UPDATE cache_outbox SET applied_at = clock_timestamp() WHERE id = ANY($1) AND applied_at IS NULL`, ids)
}

// Announce notifies every listener that ids are pending.
func (p *Postgres) Announce(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return p.exec(ctx, "announce pending changes", `SELECT pg_notify('`+p.channel()+`', $1)`, joinIDs(ids))
}

// Purge deletes the changes applied more than retention ago.
func (p *Postgres) Purge(ctx context.Context, retention time.Duration) (int64, error) {
	var n int64
	err := p.withPgx(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `DELETE FROM cache_outbox WHERE applied_at < clock_timestamp() - $1::interval`, interval(retention))
		n = tag.RowsAffected()
		return err
	})
	return n, translate("purge applied changes", err)
}

// Rows returns the stored analyses among ids.
func (p *Postgres) Rows(ctx context.Context, ids []uuid.UUID) ([]*domain.Analysis, error) {
	raw := make([][16]byte, len(ids))
	for i, id := range ids {
		raw[i] = id
	}
	var out []*domain.Analysis
	err := p.withPgx(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, "SELECT "+columns+" FROM analyses WHERE id = ANY($1)", raw)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAnalysis(rows)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, translate(fmt.Sprintf("load %d analyses", len(ids)), err)
}

// Listen LISTENs on the scope's channel on a dedicated connection and delivers
// each announcement to fn until ctx ends, reconnecting (every 100 ms at
// most) when the connection is lost. connected runs after each LISTEN took
// effect, before any notification is read.
func (p *Postgres) Listen(ctx context.Context, connected func(), fn func(ids []int64)) error {
	for {
		err := p.listenOnce(ctx, connected, fn)
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("invalidation log listener lost its connection; reconnecting", "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *Postgres) listenOnce(ctx context.Context, connected func(), fn func([]int64)) error {
	conn, err := pgx.Connect(ctx, p.dsn)
	if err != nil {
		return translate("listen: connect", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+p.channel()); err != nil {
		return translate("listen", err)
	}
	connected()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return translate("listen: wait", err)
		}
		ids, err := parseIDs(n.Payload)
		if err != nil {
			p.log.Warn("invalidation log: bad announcement", "payload", n.Payload, "error", err)
			continue
		}
		fn(ids)
	}
}

// parseIDs reads an announcement's "1,2,3".
func parseIDs(s string) ([]int64, error) {
	var ids []int64
	for f := range strings.SplitSeq(s, ",") {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("id %q: %w", f, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func joinIDs(ids []int64) string {
	b := make([]byte, 0, 8*len(ids))
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
}

// interval renders d for a ::interval parameter.
func interval(d time.Duration) string {
	return strconv.FormatInt(d.Microseconds(), 10) + " microseconds"
}

func (p *Postgres) exec(ctx context.Context, op, q string, args ...any) error {
	err := p.withPgx(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, q, args...)
		return err
	})
	return translate(op, err)
}

func (p *Postgres) changes(ctx context.Context, op, q string, args ...any) ([]outbox.Change, error) {
	var out []outbox.Change
	err := p.withPgx(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ch outbox.Change
			var ids, groups [][16]byte
			if err := rows.Scan(&ch.ID, &ch.Resource, &ids, &groups, &ch.Version, &ch.Deleted); err != nil {
				return err
			}
			ch.IDs, ch.Groups = uuidStrings(ids), uuidStrings(groups)
			out = append(out, ch)
		}
		return rows.Err()
	})
	return out, translate(op, err)
}

// uuidStrings returns raw uuids in their canonical text form.
func uuidStrings(raw [][16]byte) []string {
	out := make([]string, len(raw))
	for i, r := range raw {
		out[i] = uuid.UUID(r).String()
	}
	return out
}
