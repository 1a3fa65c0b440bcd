package service

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
)

// analysesFixture is the Analyses service on the real repository (this
// package's database) and the real Redis (this package's prefix).
type analysesFixture struct {
	svc     *Analyses
	repo    *gatedRepo
	rdb     *redis.Client
	keys    cache.Keys
	codec   *cache.Codec
	metrics *cache.Metrics
	gate    *cache.Gate
	lists   *recordingLists
}

func newAnalysesFixture(t *testing.T, rdb *redis.Client, opt cache.AsideOptions) *analysesFixture {
	t.Helper()
	env := testenv.Get(t)
	pg := openRepo(t)
	if rdb == nil {
		opt, err := redis.ParseURL(env.RedisURL)
		if err != nil {
			t.Fatal(err)
		}
		rdb = redis.NewClient(opt)
		t.Cleanup(func() { rdb.Close() })
	}
	codec, err := cache.NewCodec(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &analysesFixture{
		repo: &gatedRepo{AnalysisRepository: pg}, rdb: rdb, codec: codec,
		keys:    cache.Keys{Prefix: env.RedisPrefix + "svc:"},
		metrics: cache.NewMetrics(nil, nil), gate: &cache.Gate{}, lists: &recordingLists{},
	}
	b := cache.Backend{Redis: rdb, Keys: f.keys, Codec: codec, Metrics: f.metrics, Gate: f.gate}
	aside := cache.NewAside(b, AnalysisResource, opt)
	f.svc = NewAnalyses(f.repo, aside, f.lists, cache.NewLog(pg, b, cache.LogOptions{}))
	return f
}

// gatedRepo is the real repository with a hook after Update returns from
// Postgres, to hold a writer between its commit and its cache write.
type gatedRepo struct {
	domain.AnalysisRepository
	afterUpdate func(a *domain.Analysis)
}

func (g *gatedRepo) Update(ctx context.Context, id uuid.UUID, p domain.AnalysisPatch, ifVersion *int64) (*domain.Analysis, domain.Change, error) {
	a, change, err := g.AnalysisRepository.Update(ctx, id, p, ifVersion)
	if err == nil && g.afterUpdate != nil {
		g.afterUpdate(a)
	}
	return a, change, err
}

// recordingLists is the ChangeListener of these tests: it records the
// groups (owners) it was told about (the list caches are tested in their
// own files).
type recordingLists struct {
	mu     sync.Mutex
	owners []string
}

func (r *recordingLists) Changed(_ context.Context, owners ...string) error {
	r.mu.Lock()
	r.owners = append(r.owners, owners...)
	r.mu.Unlock()
	return nil
}

func (r *recordingLists) count(owner uuid.UUID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.owners {
		if o == owner.String() {
			n++
		}
	}
	return n
}

func newAnalysis(owner uuid.UUID) *domain.Analysis {
	notes := "confidential"
	return &domain.Analysis{OwnerID: owner, URL: "https://example.com/a", Title: "first", Status: domain.StatusPending, Tags: []string{}, Notes: &notes}
}

// cached returns the decoded entry of id in Redis.
func (f *analysesFixture) cached(t *testing.T, id uuid.UUID) cache.Entry {
	t.Helper()
	raw, err := f.rdb.Get(context.Background(), f.keys.Entity("analysis", id.String())).Bytes()
	if err != nil {
		t.Fatalf("GET entry of %s: %v", id, err)
	}
	e, err := f.codec.Decode(raw)
	if err != nil {
		t.Fatalf("decode entry of %s: %v", id, err)
	}
	return e
}

// fresh returns the body Postgres holds for id, encoded as the API writes it.
func (f *analysesFixture) fresh(t *testing.T, id uuid.UUID) (*domain.Analysis, string) {
	t.Helper()
	a, err := f.repo.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("repo.Get %s: %v", id, err)
	}
	return a, string(a.AppendJSON(nil))
}

func TestAnalysesReadYourWrites(t *testing.T) {
	f := newAnalysesFixture(t, nil, cache.AsideOptions{Jitter: 0.1})
	ctx := context.Background()
	owner := uuid.New()

	created, err := f.svc.Create(ctx, newAnalysis(owner))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.ID == uuid.Nil || created.Version != 1 || f.lists.count(owner) != 1 {
		t.Fatalf("created %+v, list notifications %d", created, f.lists.count(owner))
	}
	_, want := f.fresh(t, created.ID)
	res, err := f.svc.Get(ctx, created.ID)
	if err != nil || res.Status != cache.Hit || res.Version != 1 || string(res.Body) != want || res.Pattern != cache.PatternAside {
		t.Fatalf("read after create: %+v, %v; want HIT of %s", res, err, want)
	}

	title := "second"
	updated, err := f.svc.Update(ctx, created.ID, domain.AnalysisPatch{Title: &title}, nil)
	if err != nil || updated.Version != 2 || f.lists.count(owner) != 2 {
		t.Fatalf("Update: %+v, %v, notifications %d", updated, err, f.lists.count(owner))
	}
	_, want = f.fresh(t, created.ID)
	res, err = f.svc.Get(ctx, created.ID)
	if err != nil || res.Status != cache.Hit || res.Version != 2 || string(res.Body) != want {
		t.Fatalf("read after update: %+v, %v; want HIT of %s", res, err, want)
	}

	// A PATCH that changes nothing keeps the version and tells no list.
	v := int64(2)
	same, err := f.svc.Update(ctx, created.ID, domain.AnalysisPatch{Title: &title}, &v)
	if err != nil || same.Version != 2 || f.lists.count(owner) != 2 {
		t.Fatalf("no-op Update: %+v, %v, notifications %d", same, err, f.lists.count(owner))
	}

	if err := f.svc.Delete(ctx, created.ID, nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if f.lists.count(owner) != 3 {
		t.Fatalf("delete did not invalidate the owner's lists")
	}
	res, err = f.svc.Get(ctx, created.ID)
	if !errors.Is(err, domain.ErrAnalysisNotFound) || res.Status != cache.Hit {
		t.Fatalf("read after delete: %+v, %v; want 404 from the tombstone", res, err)
	}
	if e := f.cached(t, created.ID); e.Kind != cache.KindNegative || e.Version != 2 {
		t.Fatalf("entry after delete %+v, want tombstone of v2", e)
	}
}

func TestAnalysesGetMissHitAndNotFound(t *testing.T) {
	f := newAnalysesFixture(t, nil, cache.AsideOptions{Jitter: 0.1})
	ctx := context.Background()

	// Stored behind the service's back: the first read must load it.
	a := newAnalysis(uuid.New())
	a.ID = uuid.New()
	if _, err := f.repo.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	_, want := f.fresh(t, a.ID)
	for _, status := range []cache.Status{cache.Miss, cache.Hit} {
		res, err := f.svc.Get(ctx, a.ID)
		if err != nil || res.Status != status || string(res.Body) != want || res.Version != 1 {
			t.Fatalf("read: %+v, %v; want %s", res, err, status)
		}
	}

	missing := uuid.New()
	for _, status := range []cache.Status{cache.Miss, cache.Hit} {
		res, err := f.svc.Get(ctx, missing)
		if !errors.Is(err, domain.ErrAnalysisNotFound) || res.Status != status {
			t.Fatalf("unknown id: %+v, %v; want 404 %s", res, err, status)
		}
	}

	// Creating the id that was cached as "not found" replaces the negative entry.
	b := newAnalysis(uuid.New())
	b.ID = missing
	if _, err := f.svc.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	if res, err := f.svc.Get(ctx, missing); err != nil || res.Status != cache.Hit || res.Version != 1 {
		t.Fatalf("read after create of a not-found id: %+v, %v", res, err)
	}
}

func TestAnalysesWriteErrors(t *testing.T) {
	f := newAnalysesFixture(t, nil, cache.AsideOptions{Jitter: 0.1})
	ctx := context.Background()
	a, err := f.svc.Create(ctx, newAnalysis(uuid.New()))
	if err != nil {
		t.Fatal(err)
	}
	stale := int64(7)
	title := "x"
	if _, err := f.svc.Update(ctx, a.ID, domain.AnalysisPatch{Title: &title}, &stale); domain.ErrorCode(err) != domain.EPRECONDITION {
		t.Fatalf("Update with a stale If-Match: %v", err)
	}
	if err := f.svc.Delete(ctx, a.ID, &stale); domain.ErrorCode(err) != domain.EPRECONDITION {
		t.Fatalf("Delete with a stale If-Match: %v", err)
	}
	if _, err := f.svc.Update(ctx, uuid.New(), domain.AnalysisPatch{Title: &title}, nil); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("Update of an unknown id: %v", err)
	}
	if err := f.svc.Delete(ctx, uuid.New(), nil); domain.ErrorCode(err) != domain.ENOTFOUND {
		t.Fatalf("Delete of an unknown id: %v", err)
	}
	if _, err := f.svc.Create(ctx, &domain.Analysis{ID: a.ID, OwnerID: a.OwnerID, URL: a.URL, Title: "dup", Status: domain.StatusPending}); domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("Create of a taken id: %v", err)
	}
	if f.lists.count(a.OwnerID) != 1 {
		t.Fatalf("failed writes told the lists: %d notifications", f.lists.count(a.OwnerID))
	}
	if e := f.cached(t, a.ID); e.Version != 1 {
		t.Fatalf("failed writes changed the entry: %+v", e)
	}
}

// Two PATCHes: A commits v2, B commits v3 and writes it through, then A
// writes v2 through. Redis must keep v3, as Postgres does.
func TestAnalysesRacingPatchesForced(t *testing.T) {
	f := newAnalysesFixture(t, nil, cache.AsideOptions{Jitter: 0.1})
	ctx := context.Background()
	a, err := f.svc.Create(ctx, newAnalysis(uuid.New()))
	if err != nil {
		t.Fatal(err)
	}
	bDone := make(chan struct{})
	f.repo.afterUpdate = func(u *domain.Analysis) {
		if u.Version == 2 { // writer A: hold it between its commit and its cache write
			<-bDone
		}
	}
	var wg sync.WaitGroup
	titleA, titleB := "from A", "from B"
	wg.Go(func() {
		if _, err := f.svc.Update(ctx, a.ID, domain.AnalysisPatch{Title: &titleA}, nil); err != nil {
			t.Error(err)
		}
	})
	// Wait until A has committed v2, then run B to completion.
	for {
		cur, _ := f.fresh(t, a.ID)
		if cur.Version == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if u, err := f.svc.Update(ctx, a.ID, domain.AnalysisPatch{Title: &titleB}, nil); err != nil || u.Version != 3 {
		t.Fatalf("writer B: %+v, %v", u, err)
	}
	close(bDone)
	wg.Wait()

	pg, want := f.fresh(t, a.ID)
	if e := f.cached(t, a.ID); e.Version != pg.Version || string(e.Body) != want {
		t.Fatalf("Redis holds v%d, Postgres v%d", e.Version, pg.Version)
	}
}

// Many writers and readers on one analysis; when all are done Redis holds
// exactly what Postgres holds.
func TestAnalysesConcurrentPatchesAndReads(t *testing.T) {
	f := newAnalysesFixture(t, nil, cache.AsideOptions{Jitter: 0.1})
	ctx := context.Background()
	a, err := f.svc.Create(ctx, newAnalysis(uuid.New()))
	if err != nil {
		t.Fatal(err)
	}
	const writers, rounds = 8, 5
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			<-start
			for r := range rounds {
				title := fmt.Sprintf("w%d-r%d", w, r)
				if _, err := f.svc.Update(ctx, a.ID, domain.AnalysisPatch{Title: &title}, nil); err != nil {
					t.Error(err)
				}
			}
		})
		wg.Go(func() { // a reader per writer, racing fills against the writes
			<-start
			for range rounds {
				if _, err := f.rdb.Unlink(ctx, f.keys.Entity("analysis", a.ID.String())).Result(); err != nil {
					t.Error(err)
				}
				if _, err := f.svc.Get(ctx, a.ID); err != nil {
					t.Error(err)
				}
			}
		})
	}
	close(start)
	wg.Wait()

	pg, want := f.fresh(t, a.ID)
	if pg.Version != 1+writers*rounds {
		t.Fatalf("Postgres at v%d, want v%d", pg.Version, 1+writers*rounds)
	}
	// The last reader may have evicted the entry: a read refills it from
	// Postgres. What must never be there is an older version.
	if n := f.rdb.Exists(ctx, f.keys.Entity("analysis", a.ID.String())).Val(); n == 1 {
		if e := f.cached(t, a.ID); e.Kind == cache.KindValue && (e.Version != pg.Version || string(e.Body) != want) {
			t.Fatalf("Redis holds v%d, Postgres v%d", e.Version, pg.Version)
		}
	}
	res, err := f.svc.Get(ctx, a.ID)
	if err != nil || res.Version != pg.Version || string(res.Body) != want {
		t.Fatalf("final read %+v, %v; want v%d", res, err, pg.Version)
	}
}

// Redis unreachable: writes succeed, reads answer BYPASS from Postgres.
func TestAnalysesRedisDown(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { dead.Close() })
	f := newAnalysesFixture(t, dead, cache.AsideOptions{})
	ctx := context.Background()

	a, err := f.svc.Create(ctx, newAnalysis(uuid.New()))
	if err != nil {
		t.Fatalf("Create with Redis down: %v", err)
	}
	if f.gate.Open() {
		t.Fatal("the write-through failed and the gate is still open: reads would be served from Redis before the change is applied")
	}
	_, want := f.fresh(t, a.ID)
	res, err := f.svc.Get(ctx, a.ID)
	if err != nil || res.Status != cache.Bypass || string(res.Body) != want {
		t.Fatalf("read with Redis down: %+v, %v; want BYPASS", res, err)
	}
	if res, err := f.svc.Get(ctx, uuid.New()); !errors.Is(err, domain.ErrAnalysisNotFound) || res.Status != cache.Bypass {
		t.Fatalf("unknown id with Redis down: %+v, %v; want 404 BYPASS", res, err)
	}
	if err := f.svc.Delete(ctx, a.ID, nil); err != nil {
		t.Fatalf("Delete with Redis down: %v", err)
	}
	if _, _, errs := f.metrics.Totals(); errs == 0 {
		t.Fatal("Redis errors not counted")
	}
	if f.lists.count(a.OwnerID) == 0 {
		t.Fatal("lists not told")
	}
}

// A read misses and loads v1; before it fills, a PATCH (v2) or a DELETE
// completes. The read's fill must be dropped: the next read sees the write.
func TestAnalysesReadRacingWriteForced(t *testing.T) {
	ctx := context.Background()
	for _, write := range []string{"patch", "delete"} {
		t.Run(write, func(t *testing.T) {
			var f *analysesFixture
			var id uuid.UUID
			var once sync.Once
			f = newAnalysesFixture(t, nil, cache.AsideOptions{AfterLoad: func(string) {
				once.Do(func() {
					title := "written during the read"
					var err error
					if write == "patch" {
						_, err = f.svc.Update(ctx, id, domain.AnalysisPatch{Title: &title}, nil)
					} else {
						err = f.svc.Delete(ctx, id, nil)
					}
					if err != nil {
						t.Error(err)
					}
				})
			}})
			a := newAnalysis(uuid.New())
			a.ID = uuid.New()
			if _, err := f.repo.Create(ctx, a); err != nil { // not cached: the read will miss
				t.Fatal(err)
			}
			id = a.ID
			if res, err := f.svc.Get(ctx, id); err != nil || res.Version != 1 || res.Status != cache.Miss {
				t.Fatalf("racing read: %+v, %v; want MISS v1", res, err)
			}
			res, err := f.svc.Get(ctx, id)
			if write == "patch" {
				_, want := f.fresh(t, id)
				if err != nil || res.Status != cache.Hit || res.Version != 2 || string(res.Body) != want {
					t.Fatalf("read after the racing patch: %s v%d, %v; want HIT v2", res.Status, res.Version, err)
				}
			} else if !errors.Is(err, domain.ErrAnalysisNotFound) || res.Status != cache.Hit {
				t.Fatalf("read after the racing delete: %s v%d, %v; want 404 HIT", res.Status, res.Version, err)
			}
		})
	}
}
