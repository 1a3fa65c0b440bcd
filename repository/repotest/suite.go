// Package repotest is the one behavioural suite every
// domain.AnalysisRepository must pass: the bare Postgres repository and each
// cache decorator run the same RunSuite, so a decorator is proven to keep
// the repository's contract.
//
// Isolation: every subtest calls newRepo, which must return a repository
// over an EMPTY analyses table (and, for a cache decorator, an empty key
// prefix). TruncateAnalyses empties the table; call it from newRepo. Subtests
// run one after another, never in parallel, because Stats and unfiltered
// lists see the whole table.
package repotest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
)

// TruncateAnalyses empties the analyses table of db, failing t on error.
func TruncateAnalyses(t testing.TB, db *sql.DB) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), "TRUNCATE analyses"); err != nil {
		t.Fatalf("truncate analyses: %v", err)
	}
}

// RunSuite runs the shared behavioural suite against the repositories newRepo
// returns. newRepo is called once per subtest and must return a repository
// over an empty analyses table.
func RunSuite(t *testing.T, newRepo func(t *testing.T) domain.AnalysisRepository) {
	tests := []struct {
		name string
		fn   func(*testing.T, domain.AnalysisRepository)
	}{
		{"CreateGetRoundTrip", testCreateGetRoundTrip},
		{"CreateDuplicateConflicts", testCreateDuplicate},
		{"NotFound", testNotFound},
		{"UpdateSemantics", testUpdateSemantics},
		{"UpdateIfVersion", testUpdateIfVersion},
		{"ConcurrentUpdatesAllApply", testConcurrentUpdates},
		{"Delete", testDelete},
		{"ListFiltersOrderPaging", testList},
		{"ListByOwner", testListByOwner},
		{"InsertMissingIdempotent", testInsertMissing},
		{"ExistingIDs", testExistingIDs},
		{"StatsEmpty", testStatsEmpty},
		{"Stats", testStats},
		{"Ping", func(t *testing.T, r domain.AnalysisRepository) {
			if err := r.Ping(context.Background()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newRepo(t)) })
	}
}

func ptr[T any](v T) *T { return &v }

// NewAnalysis returns a valid analysis with a fresh id for owner, every
// optional field set. Tests change what they need.
func NewAnalysis(owner uuid.UUID, title string) domain.Analysis {
	return domain.Analysis{
		ID:      uuid.New(),
		OwnerID: owner,
		URL:     "https://example.com/" + title,
		Title:   title,
		Status:  domain.StatusPending,
		Summary: ptr("summary of " + title),
		Score:   ptr(0.5),
		Tags:    []string{"go", "cache"},
		Notes:   ptr("secret notes"),
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := domain.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (err %v), want %q", what, got, err, code)
	}
}

func mustCreate(t *testing.T, r domain.AnalysisRepository, a domain.Analysis) domain.Analysis {
	t.Helper()
	if _, err := r.Create(context.Background(), &a); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return a
}

func mustGet(t *testing.T, r domain.AnalysisRepository, id uuid.UUID) domain.Analysis {
	t.Helper()
	a, err := r.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get %s: %v", id, err)
	}
	return *a
}

// sameAnalysis compares every field; times by instant and location (UTC).
func sameAnalysis(t *testing.T, what string, got, want domain.Analysis) {
	t.Helper()
	if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
		t.Errorf("%s: timestamps not UTC: %v %v", what, got.CreatedAt.Location(), got.UpdatedAt.Location())
	}
	if !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("%s: times = %v/%v, want %v/%v", what, got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	}
	g, w := got, want
	g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if w.Tags == nil {
		w.Tags = []string{}
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, show(g), show(w))
	}
}

func show(a domain.Analysis) string {
	s := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return fmt.Sprintf("%q", *p)
	}
	f := "<nil>"
	if a.Score != nil {
		f = fmt.Sprint(*a.Score)
	}
	return fmt.Sprintf("{id %s owner %s url %q title %q status %s summary %s score %s tags %q (nil %v) notes %s v%d}",
		a.ID, a.OwnerID, a.URL, a.Title, a.Status, s(a.Summary), f, a.Tags, a.Tags == nil, s(a.Notes), a.Version)
}

func testCreateGetRoundTrip(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	owner := uuid.New()
	full := NewAnalysis(owner, "Zürich — 東京 ✓")
	full.URL = "https://例え.jp/パス?q=ü"
	full.Summary = ptr("multi\nline \"quoted\" \\ backslash, {braces}")
	full.Score = ptr(0.123456789012345)
	full.Tags = []string{"unicode-é", "with space", "comma,inside", `quote"inside`, "NULL", "{braced}"}
	full.Status = domain.StatusCompleted

	minimal := domain.Analysis{ID: uuid.New(), OwnerID: owner, URL: "http://x", Title: "t", Status: domain.StatusPending}
	zeroScore := NewAnalysis(owner, "zero")
	zeroScore.Score = ptr(0.0) // 0 is a score, not "no score"
	zeroScore.Summary, zeroScore.Notes = ptr(""), ptr("")

	for _, in := range []domain.Analysis{full, minimal, zeroScore} {
		before := time.Now().UTC().Truncate(time.Microsecond)
		a := in
		if _, err := r.Create(ctx, &a); err != nil {
			t.Fatalf("Create %s: %v", show(in), err)
		}
		after := time.Now().UTC()
		if a.Version != 1 {
			t.Errorf("Create: version %d, want 1", a.Version)
		}
		if !a.CreatedAt.Equal(a.UpdatedAt) || a.CreatedAt.Before(before) || a.CreatedAt.After(after) {
			t.Errorf("Create: created %v updated %v, want equal and within [%v, %v]", a.CreatedAt, a.UpdatedAt, before, after)
		}
		if a.CreatedAt.Location() != time.UTC || a.CreatedAt.Nanosecond()%1000 != 0 {
			t.Errorf("Create: created_at %v must be UTC with microsecond precision", a.CreatedAt)
		}
		want := in
		want.Version, want.CreatedAt, want.UpdatedAt = 1, a.CreatedAt, a.UpdatedAt
		sameAnalysis(t, "value after Create", a, want)
		sameAnalysis(t, "Get after Create", mustGet(t, r, a.ID), want)
	}
}

func testCreateDuplicate(t *testing.T, r domain.AnalysisRepository) {
	a := mustCreate(t, r, NewAnalysis(uuid.New(), "first"))
	dup := NewAnalysis(uuid.New(), "second")
	dup.ID = a.ID
	_, err := r.Create(context.Background(), &dup)
	wantCode(t, "Create with a taken id", err, domain.ECONFLICT)
	sameAnalysis(t, "original after conflicting Create", mustGet(t, r, a.ID), a)
}

func testNotFound(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	id := uuid.New()
	_, err := r.Get(ctx, id)
	wantCode(t, "Get", err, domain.ENOTFOUND)
	if domain.ErrorMessage(err) != "Analysis not found" {
		t.Errorf("Get: message %q, want %q", domain.ErrorMessage(err), "Analysis not found")
	}
	_, _, err = r.Update(ctx, id, domain.AnalysisPatch{Title: ptr("x")}, nil)
	wantCode(t, "Update", err, domain.ENOTFOUND)
	_, _, err = r.Update(ctx, id, domain.AnalysisPatch{Title: ptr("x")}, ptr(int64(1)))
	wantCode(t, "Update with ifVersion", err, domain.ENOTFOUND)
	_, _, err = r.Delete(ctx, id, nil)
	wantCode(t, "Delete", err, domain.ENOTFOUND)
	_, _, err = r.Delete(ctx, id, ptr(int64(1)))
	wantCode(t, "Delete with ifVersion", err, domain.ENOTFOUND)
}

func testUpdateSemantics(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	a := mustCreate(t, r, NewAnalysis(uuid.New(), "orig"))

	// A patch that sends the current values changes nothing.
	same := domain.AnalysisPatch{Title: ptr(a.Title), Tags: ptr(slices.Clone(a.Tags)), Summary: domain.Nullable[string]{Set: true, Value: a.Summary}}
	got, _, err := r.Update(ctx, a.ID, same, nil)
	if err != nil {
		t.Fatalf("no-op Update: %v", err)
	}
	sameAnalysis(t, "no-op Update result", *got, a)
	sameAnalysis(t, "Get after no-op Update", mustGet(t, r, a.ID), a)
	got, _, err = r.Update(ctx, a.ID, domain.AnalysisPatch{}, nil)
	if err != nil {
		t.Fatalf("empty Update: %v", err)
	}
	sameAnalysis(t, "empty Update result", *got, a)

	// A change bumps the version by one and sets updated_at.
	status := domain.StatusCompleted
	got, _, err = r.Update(ctx, a.ID, domain.AnalysisPatch{Title: ptr("new title"), Status: &status, Tags: ptr([]string{})}, nil)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	want := a
	want.Title, want.Status, want.Tags, want.Version = "new title", status, []string{}, 2
	want.UpdatedAt = got.UpdatedAt
	if got.UpdatedAt.Before(a.UpdatedAt) || got.UpdatedAt.Nanosecond()%1000 != 0 {
		t.Errorf("updated_at %v: must not go back from %v and must have µs precision", got.UpdatedAt, a.UpdatedAt)
	}
	sameAnalysis(t, "Update result", *got, want)
	sameAnalysis(t, "Get after Update", mustGet(t, r, a.ID), want)

	// Null clears the nullable fields; the others stay.
	clear := domain.AnalysisPatch{
		Summary: domain.Nullable[string]{Set: true},
		Score:   domain.Nullable[float64]{Set: true},
		Notes:   domain.Nullable[string]{Set: true},
	}
	got, _, err = r.Update(ctx, a.ID, clear, nil)
	if err != nil {
		t.Fatalf("clearing Update: %v", err)
	}
	want.Summary, want.Score, want.Notes, want.Version, want.UpdatedAt = nil, nil, nil, 3, got.UpdatedAt
	sameAnalysis(t, "clearing Update result", *got, want)
	sameAnalysis(t, "Get after clearing Update", mustGet(t, r, a.ID), want)

	// And a value sets them again.
	got, _, err = r.Update(ctx, a.ID, domain.AnalysisPatch{Score: domain.Nullable[float64]{Set: true, Value: ptr(1.0)}}, nil)
	if err != nil {
		t.Fatalf("Update score: %v", err)
	}
	want.Score, want.Version, want.UpdatedAt = ptr(1.0), 4, got.UpdatedAt
	sameAnalysis(t, "Get after setting score", mustGet(t, r, a.ID), want)
}

func testUpdateIfVersion(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	a := mustCreate(t, r, NewAnalysis(uuid.New(), "v"))
	_, _, err := r.Update(ctx, a.ID, domain.AnalysisPatch{Title: ptr("changed")}, ptr(int64(2)))
	wantCode(t, "Update with a wrong ifVersion", err, domain.EPRECONDITION)
	if domain.ErrorMessage(err) != "Precondition Failed" {
		t.Errorf("message %q, want %q", domain.ErrorMessage(err), "Precondition Failed")
	}
	sameAnalysis(t, "Get after failed precondition", mustGet(t, r, a.ID), a)

	got, _, err := r.Update(ctx, a.ID, domain.AnalysisPatch{Title: ptr("changed")}, ptr(int64(1)))
	if err != nil {
		t.Fatalf("Update with the right ifVersion: %v", err)
	}
	if got.Version != 2 || got.Title != "changed" {
		t.Fatalf("Update with ifVersion: got v%d %q, want v2 %q", got.Version, got.Title, "changed")
	}
	// The old version no longer matches, even for a no-op patch.
	_, _, err = r.Update(ctx, a.ID, domain.AnalysisPatch{}, ptr(int64(1)))
	wantCode(t, "no-op Update with a stale ifVersion", err, domain.EPRECONDITION)
}

// testConcurrentUpdates runs many concurrent patches of one analysis, each
// changing a different tag list; every one must apply exactly once (no lost
// update), so the version ends at 1+n and each returned version is distinct.
func testConcurrentUpdates(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	a := mustCreate(t, r, NewAnalysis(uuid.New(), "race"))
	const n = 16
	versions := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got, _, err := r.Update(ctx, a.ID, domain.AnalysisPatch{Title: ptr(fmt.Sprintf("writer %d", i))}, nil)
			errs[i] = err
			if err == nil {
				versions[i] = got.Version
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Update: %v", err)
	}
	slices.Sort(versions)
	for i, v := range versions {
		if v != int64(i+2) {
			t.Fatalf("returned versions %v, want 2..%d each once", versions, n+1)
		}
	}
	final := mustGet(t, r, a.ID)
	if final.Version != n+1 || !strings.HasPrefix(final.Title, "writer ") {
		t.Fatalf("final v%d %q, want v%d written by one of the writers", final.Version, final.Title, n+1)
	}
}

func testDelete(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	a := mustCreate(t, r, NewAnalysis(uuid.New(), "doomed"))
	got, _, err := r.Update(ctx, a.ID, domain.AnalysisPatch{Title: ptr("doomed v2")}, nil)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	a = *got

	_, _, err = r.Delete(ctx, a.ID, ptr(int64(1)))
	wantCode(t, "Delete with a stale ifVersion", err, domain.EPRECONDITION)
	sameAnalysis(t, "Get after refused Delete", mustGet(t, r, a.ID), a)

	old, _, err := r.Delete(ctx, a.ID, ptr(int64(2)))
	if err != nil {
		t.Fatalf("Delete with the right ifVersion: %v", err)
	}
	sameAnalysis(t, "Delete returns the old row", *old, a)
	_, err = r.Get(ctx, a.ID)
	wantCode(t, "Get after Delete", err, domain.ENOTFOUND)
	_, _, err = r.Delete(ctx, a.ID, nil)
	wantCode(t, "second Delete", err, domain.ENOTFOUND)

	b := mustCreate(t, r, NewAnalysis(uuid.New(), "plain"))
	old, _, err = r.Delete(ctx, b.ID, nil)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	sameAnalysis(t, "Delete without ifVersion returns the old row", *old, b)
}

// listFixture stores analyses with controlled timestamps (through
// InsertMissing) so that order, including the id tie-break, is known.
type listFixture struct {
	ownerA, ownerB uuid.UUID
	all            []domain.Analysis // in list order: created_at DESC, id DESC
}

func newListFixture(t *testing.T, r domain.AnalysisRepository) listFixture {
	t.Helper()
	f := listFixture{ownerA: uuid.New(), ownerB: uuid.New()}
	base := time.Date(2026, 11, 26, 10, 20, 30, 123456000, time.UTC)
	statuses := domain.Statuses
	var items []domain.Analysis
	for i := range 12 {
		owner := f.ownerA
		if i%3 == 2 {
			owner = f.ownerB
		}
		a := NewAnalysis(owner, fmt.Sprintf("item-%02d", i))
		a.Status = statuses[i%len(statuses)]
		a.Tags = []string{fmt.Sprintf("mod%d", i%2)}
		if i%4 == 0 {
			a.Tags = append(a.Tags, "special")
		}
		// Pairs share a timestamp, so the id breaks the tie.
		a.CreatedAt = base.Add(time.Duration(i/2) * time.Second)
		a.UpdatedAt = a.CreatedAt
		a.Version = 1
		items = append(items, a)
	}
	ids, _, err := r.InsertMissing(context.Background(), items)
	if err != nil || len(ids) != len(items) {
		t.Fatalf("InsertMissing fixture: %d ids, %v", len(ids), err)
	}
	f.all = slices.Clone(items)
	slices.SortFunc(f.all, func(x, y domain.Analysis) int {
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID.String(), x.ID.String())
	})
	return f
}

func (f listFixture) where(keep func(domain.Analysis) bool) []domain.Analysis {
	var out []domain.Analysis
	for _, a := range f.all {
		if keep(a) {
			out = append(out, a)
		}
	}
	return out
}

func samePage(t *testing.T, what string, got domain.Page, want []domain.Analysis, count int) {
	t.Helper()
	if got.Count != int64(count) {
		t.Errorf("%s: count %d, want %d", what, got.Count, count)
	}
	if len(got.Data) != len(want) {
		var ids []string
		for _, a := range got.Data {
			ids = append(ids, a.Title)
		}
		t.Fatalf("%s: %d rows %v, want %d", what, len(got.Data), ids, len(want))
	}
	for i := range want {
		sameAnalysis(t, fmt.Sprintf("%s row %d", what, i), got.Data[i], want[i])
	}
}

func window(s []domain.Analysis, skip, limit int) []domain.Analysis {
	if skip >= len(s) {
		return nil
	}
	return s[skip:min(skip+limit, len(s))]
}

func testList(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	f := newListFixture(t, r)
	list := func(filter domain.ListFilter) domain.Page {
		t.Helper()
		p, err := r.List(ctx, filter)
		if err != nil {
			t.Fatalf("List %+v: %v", filter, err)
		}
		return p
	}
	completed, tag, missingTag := domain.StatusCompleted, "special", "nope"
	cases := []struct {
		name   string
		filter domain.ListFilter
		keep   func(domain.Analysis) bool
	}{
		{"all", domain.ListFilter{}, func(domain.Analysis) bool { return true }},
		{"owner", domain.ListFilter{OwnerID: &f.ownerA}, func(a domain.Analysis) bool { return a.OwnerID == f.ownerA }},
		{"status", domain.ListFilter{Status: &completed}, func(a domain.Analysis) bool { return a.Status == completed }},
		{"tag", domain.ListFilter{Tag: &tag}, func(a domain.Analysis) bool { return slices.Contains(a.Tags, tag) }},
		{"owner+status+tag", domain.ListFilter{OwnerID: &f.ownerA, Status: &completed, Tag: ptr("mod0")},
			func(a domain.Analysis) bool {
				return a.OwnerID == f.ownerA && a.Status == completed && slices.Contains(a.Tags, "mod0")
			}},
		{"no match", domain.ListFilter{Tag: &missingTag}, func(domain.Analysis) bool { return false }},
	}
	for _, c := range cases {
		want := f.where(c.keep)
		for _, pg := range []struct{ skip, limit int }{{0, 100}, {0, 3}, {2, 3}, {len(want) - 1, 5}, {len(want), 5}, {50, 5}} {
			if pg.skip < 0 {
				continue
			}
			filter := c.filter
			filter.Skip, filter.Limit = pg.skip, pg.limit
			samePage(t, fmt.Sprintf("List %s skip %d limit %d", c.name, pg.skip, pg.limit),
				list(filter), window(want, pg.skip, pg.limit), len(want))
		}
	}
	// An empty result has a non-nil Data slice, so it encodes as [].
	if p := list(domain.ListFilter{Tag: &missingTag}); p.Data == nil {
		t.Error("List with no match: Data is nil, want empty slice")
	}
}

func testListByOwner(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	f := newListFixture(t, r)
	want := f.where(func(a domain.Analysis) bool { return a.OwnerID == f.ownerB })
	for _, pg := range []struct{ skip, limit int }{{0, 20}, {1, 2}, {len(want), 20}, {100, 1}} {
		p, err := r.ListByOwner(ctx, f.ownerB, pg.skip, pg.limit)
		if err != nil {
			t.Fatalf("ListByOwner: %v", err)
		}
		samePage(t, fmt.Sprintf("ListByOwner skip %d limit %d", pg.skip, pg.limit), p, window(want, pg.skip, pg.limit), len(want))
	}
	p, err := r.ListByOwner(ctx, uuid.New(), 0, 20)
	if err != nil {
		t.Fatalf("ListByOwner of nobody: %v", err)
	}
	samePage(t, "ListByOwner of an owner with nothing", p, nil, 0)
}

func testExistingIDs(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	owner := uuid.New()
	a := mustCreate(t, r, NewAnalysis(owner, "a"))
	b := mustCreate(t, r, NewAnalysis(owner, "b"))
	gone := mustCreate(t, r, NewAnalysis(owner, "gone"))
	if _, _, err := r.Delete(ctx, gone.ID, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	got, err := r.ExistingIDs(ctx, []uuid.UUID{uuid.New(), b.ID, gone.ID, a.ID})
	if err != nil {
		t.Fatalf("ExistingIDs: %v", err)
	}
	if !sameIDs(got, []uuid.UUID{a.ID, b.ID}) {
		t.Fatalf("ExistingIDs = %v, want %v and %v only", got, a.ID, b.ID)
	}
	if got, err := r.ExistingIDs(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("ExistingIDs(nil) = %v, %v; want none", got, err)
	}
}

func testInsertMissing(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	owner := uuid.New()
	existing := mustCreate(t, r, NewAnalysis(owner, "existing"))

	created := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC)
	var fresh []domain.Analysis
	for i := range 3 {
		a := NewAnalysis(owner, fmt.Sprintf("fresh-%d", i))
		a.Version, a.CreatedAt, a.UpdatedAt = 1, created, created
		fresh = append(fresh, a)
	}
	fresh[1].Summary, fresh[1].Score, fresh[1].Notes, fresh[1].Tags = nil, nil, nil, nil

	// The existing id comes back with other content: it must stay untouched.
	clash := NewAnalysis(uuid.New(), "clash")
	clash.ID, clash.Version, clash.CreatedAt, clash.UpdatedAt = existing.ID, 7, created, created
	batch := []domain.Analysis{fresh[0], clash, fresh[1], fresh[2]}

	ids, _, err := r.InsertMissing(ctx, batch)
	if err != nil {
		t.Fatalf("InsertMissing: %v", err)
	}
	wantIDs := []uuid.UUID{fresh[0].ID, fresh[1].ID, fresh[2].ID}
	if !sameIDs(ids, wantIDs) {
		t.Fatalf("InsertMissing returned %v, want %v (only the inserted ids)", ids, wantIDs)
	}
	for _, a := range fresh {
		sameAnalysis(t, "Get of an inserted item", mustGet(t, r, a.ID), a)
	}
	sameAnalysis(t, "Get of the existing id after InsertMissing", mustGet(t, r, existing.ID), existing)

	// Replaying the same batch inserts nothing and changes nothing.
	ids, _, err = r.InsertMissing(ctx, batch)
	if err != nil {
		t.Fatalf("replayed InsertMissing: %v", err)
	}
	if len(ids) != 0 {
		t.Fatalf("replayed InsertMissing returned %v, want none", ids)
	}
	for _, a := range fresh {
		sameAnalysis(t, "Get after replay", mustGet(t, r, a.ID), a)
	}
	p, err := r.ListByOwner(ctx, owner, 0, 100)
	if err != nil {
		t.Fatalf("ListByOwner: %v", err)
	}
	if p.Count != 4 {
		t.Fatalf("owner has %d analyses after replay, want 4", p.Count)
	}

	ids, _, err = r.InsertMissing(ctx, nil)
	if err != nil || len(ids) != 0 {
		t.Fatalf("InsertMissing(nil) = %v, %v; want nothing, nil", ids, err)
	}
}

func sameIDs(got, want []uuid.UUID) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	cmp := func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) }
	slices.SortFunc(g, cmp)
	slices.SortFunc(w, cmp)
	return slices.Equal(g, w)
}

func testStatsEmpty(t *testing.T, r domain.AnalysisRepository) {
	before := time.Now().UTC().Truncate(time.Microsecond)
	s, err := r.Stats(context.Background())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if s.Total != 0 || s.AvgScore != nil || len(s.TopTags) != 0 || s.TopTags == nil {
		t.Errorf("Stats of nothing: total %d avg %v tags %v (nil %v), want 0, nil, empty non-nil",
			s.Total, s.AvgScore, s.TopTags, s.TopTags == nil)
	}
	for _, st := range domain.Statuses {
		if v, ok := s.ByStatus[st]; !ok || v != 0 {
			t.Errorf("Stats of nothing: by_status[%s] = %d (present %v), want 0 present", st, v, ok)
		}
	}
	if s.ComputedAt.Before(before) || s.ComputedAt.Location() != time.UTC {
		t.Errorf("computed_at %v, want UTC and not before %v", s.ComputedAt, before)
	}
}

func testStats(t *testing.T, r domain.AnalysisRepository) {
	ctx := context.Background()
	owner := uuid.New()
	// 5 analyses: 2 pending, 2 completed, 1 failed, 0 processing.
	// Scores 0.2, 0.4, 0.9 and two nil: avg 0.5.
	// Tags: "b" 4, "a" 3, "c" 3, t00..t11 once each (ties broken by tag, byte order).
	specs := []struct {
		status domain.Status
		score  *float64
		tags   []string
	}{
		{domain.StatusPending, ptr(0.2), []string{"b", "a", "c", "t00", "t01", "t02"}},
		{domain.StatusPending, nil, []string{"b", "a", "c", "t03", "t04", "t05"}},
		{domain.StatusCompleted, ptr(0.4), []string{"b", "a", "c", "t06", "t07", "t08"}},
		{domain.StatusCompleted, ptr(0.9), []string{"b", "t09", "t10", "t11", "Z"}},
		{domain.StatusFailed, nil, nil},
	}
	for i, s := range specs {
		a := NewAnalysis(owner, fmt.Sprintf("s%d", i))
		a.Status, a.Score, a.Tags = s.status, s.score, s.tags
		mustCreate(t, r, a)
	}
	got, err := r.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if got.Total != 5 {
		t.Errorf("total %d, want 5", got.Total)
	}
	wantBy := map[domain.Status]int64{domain.StatusPending: 2, domain.StatusProcessing: 0, domain.StatusCompleted: 2, domain.StatusFailed: 1}
	if !reflect.DeepEqual(got.ByStatus, wantBy) {
		t.Errorf("by_status %v, want %v", got.ByStatus, wantBy)
	}
	if got.AvgScore == nil || *got.AvgScore < 0.5-1e-9 || *got.AvgScore > 0.5+1e-9 {
		t.Errorf("avg_score %v, want 0.5", got.AvgScore)
	}
	// "Z" sorts before "t.." in byte order (and after in most locales).
	tc := func(tag string, n int64) domain.TagCount { return domain.TagCount{Tag: tag, Count: n} }
	wantTags := []domain.TagCount{tc("b", 4), tc("a", 3), tc("c", 3), tc("Z", 1), tc("t00", 1),
		tc("t01", 1), tc("t02", 1), tc("t03", 1), tc("t04", 1), tc("t05", 1)}
	if !reflect.DeepEqual(got.TopTags, wantTags) {
		t.Errorf("top_tags %v, want %v", got.TopTags, wantTags)
	}
}
