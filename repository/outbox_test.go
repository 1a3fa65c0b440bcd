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
		changes, err := p.Pending(ctx, 0, 1000)
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
