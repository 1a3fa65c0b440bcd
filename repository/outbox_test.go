package repository

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository/repotest"
)

// openScoped opens a repository whose invalidation log is scope's.
func openScoped(t *testing.T, scope string) *Postgres {
	t.Helper()
	openTestRepo(t, nil) // migrates
	opts := DefaultOptions()
	opts.ChangeScope = scope
	p, err := OpenWithOptions(context.Background(), testenv.Get(t).DatabaseURL, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// Two caches on one database (two CACHE_PREFIXes) never see each other's
// changes: neither in the log they apply, nor in its announcements.
func TestChangeLogIsScoped(t *testing.T) {
	ctx := context.Background()
	a, b := openScoped(t, "scope-a:"+uuid.NewString()), openScoped(t, "scope-b:"+uuid.NewString())
	row := repotest.NewAnalysis(uuid.New(), "scoped")
	change, err := a.Create(ctx, &row)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(p *Postgres) []int64 {
		changes, err := p.Pending(ctx, nil, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, c := range changes {
			out = append(out, c.ID)
		}
		return out
	}
	if !slices.Contains(ids(a), change.ID) || slices.Contains(ids(b), change.ID) {
		t.Fatalf("change %d: pending in a %v, in b %v; want it in a only", change.ID, ids(a), ids(b))
	}

	// b's listener hears b's announcement, never a's (sent first).
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	connected := make(chan struct{}, 1)
	heard := make(chan []int64, 4)
	go func() {
		_ = b.Listen(lctx, func() { connected <- struct{}{} }, func(ids []int64) { heard <- ids })
	}()
	<-connected
	if err := a.Announce(ctx, []int64{change.ID}); err != nil {
		t.Fatal(err)
	}
	if err := b.Announce(ctx, []int64{-7}); err != nil {
		t.Fatal(err)
	}
	if got := <-heard; !slices.Equal(got, []int64{-7}) {
		t.Fatalf("b's listener heard %v first; want only its own announcement [-7]", got)
	}
}

// TestPreviousReleaseWritesStillLog: during a rolling upgrade, instances of
// the release before resources existed keep writing with their own
// statement (which names neither the resource nor any new column) against
// the migrated schema; it must still succeed, and the change it logs must
// read back as an analysis change, ids and owners included.
func TestPreviousReleaseWritesStillLog(t *testing.T) {
	ctx := context.Background()
	scope := "previous-release:" + uuid.NewString()
	p := openScoped(t, scope)
	id, owner := uuid.New(), uuid.New()
	// The outbox insert of the previous release's create statement, verbatim.
	if err := p.DB().Exec(`INSERT INTO cache_outbox (scope, analysis_ids, owner_ids, version, deleted)
		SELECT ?::text, ARRAY[?::uuid], ARRAY[?::uuid], 1, false`, scope, id.String(), owner.String()).Error; err != nil {
		t.Fatalf("the previous release's log insert fails on the migrated schema: %v", err)
	}
	changes, err := p.Pending(ctx, nil, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 {
		t.Fatalf("%d pending changes in the scope, want 1", len(changes))
	}
	c := changes[0]
	if c.Resource != "analysis" || !slices.Equal(c.IDs, []string{id.String()}) || !slices.Equal(c.Groups, []string{owner.String()}) || c.Version != 1 {
		t.Fatalf("read back %+v, want an analysis change of %s owned by %s at version 1", c, id, owner)
	}
}
