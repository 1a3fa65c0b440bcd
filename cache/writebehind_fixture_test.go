package cache

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
)

// wbFixture is what a write-behind test runs on: the shared Redis under a
// prefix of its own, the package's Postgres database, the real list
// invalidation.
type wbFixture struct {
	rdb     *redis.Client
	keys    Keys
	codec   *Codec
	repo    *repository.Postgres
	metrics *Metrics
	lists   *ListInvalidation
}

var wbQuietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// wbResource is the resource the write-behind tests ingest: analyses.
var wbResource = Resource{Kind: domain.AnalysisKind, Lists: "analyses", Group: "user", AllGroups: "analyses"}

// wbAnalyses is the EntityCodec of analyses (service.AnalysisEntities,
// which the cache's tests cannot import).
type wbAnalyses struct{}

func (wbAnalyses) ID(a domain.Analysis) string                 { return a.ID.String() }
func (wbAnalyses) Group(a domain.Analysis) string              { return a.OwnerID.String() }
func (wbAnalyses) Version(a domain.Analysis) int64             { return a.Version }
func (wbAnalyses) Append(dst []byte, a domain.Analysis) []byte { return a.AppendJSON(dst) }
func (wbAnalyses) Parse(body []byte) (domain.Analysis, error)  { return domain.ParseAnalysisJSON(body) }

// wbStore adapts the repository to a BulkStore, as service.AnalysisBulkStore does.
type wbStore struct{ repo domain.AnalysisRepository }

func (s wbStore) InsertMissing(ctx context.Context, items []domain.Analysis) ([]string, int64, error) {
	ids, change, err := s.repo.InsertMissing(ctx, items)
	return wbStrings(ids), change.ID, wbStoreError(err)
}

func (s wbStore) ExistingIDs(ctx context.Context, ids []string) ([]string, error) {
	uids := make([]uuid.UUID, len(ids))
	for i, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, err
		}
		uids[i] = u
	}
	found, err := s.repo.ExistingIDs(ctx, uids)
	return wbStrings(found), wbStoreError(err)
}

func wbStoreError(err error) error {
	if domain.ErrorCode(err) == domain.EUNAVAILABLE {
		return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	return err
}

func wbStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func newWBFixture(t *testing.T) *wbFixture {
	t.Helper()
	env := testenv.Get(t)
	ropt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	t.Cleanup(func() { rdb.Close() })
	return newWBFixtureOn(t, rdb, openWBRepo(t, env.DatabaseURL), Keys{Prefix: env.UniquePrefix("wb")})
}

func newWBFixtureOn(t testing.TB, rdb *redis.Client, repo *repository.Postgres, keys Keys) *wbFixture {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	codec, err := NewCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &wbFixture{rdb: rdb, keys: keys, codec: codec, repo: repo, metrics: NewMetrics(nil, wbQuietLog)}
	f.lists = NewListInvalidation(f.backend(f.metrics), wbResource)
	return f
}

// backend is the fixture's Backend with metrics m.
func (f *wbFixture) backend(m *Metrics) Backend {
	return Backend{Redis: f.rdb, Keys: f.keys, Codec: f.codec, Metrics: m, Logger: wbQuietLog}
}

// openWBRepo opens the repository on dsn and applies the migrations.
func openWBRepo(t testing.TB, dsn string) *repository.Postgres {
	t.Helper()
	ctx := context.Background()
	repo, err := repository.Open(ctx, dsn, wbQuietLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	if err := repo.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return repo
}

// writeBehind returns a WriteBehind of analyses on the fixture, with its
// own metrics.
func (f *wbFixture) writeBehind(consumer string, opt WriteBehindOptions) (*WriteBehind[domain.Analysis], *Metrics) {
	m := NewMetrics(nil, wbQuietLog)
	opt.Consumer = consumer
	return NewWriteBehind[domain.Analysis](f.backend(m), wbResource, wbStore{f.repo}, wbAnalyses{}, f.lists, opt), m
}

// newWBItem returns a valid analysis with sensitive notes, complete as the
// ingest service hands it to Enqueue: version 1, created_at = updated_at =
// now (UTC, microseconds).
func newWBItem(owner uuid.UUID, title string) domain.Analysis {
	notes := "secret-notes-" + uuid.NewString()
	score := 0.25
	now := time.Now().UTC().Truncate(time.Microsecond)
	return domain.Analysis{
		ID: uuid.New(), OwnerID: owner, URL: "https://example.com/" + title, Title: title,
		Status: domain.StatusPending, Score: &score, Tags: []string{"bulk"}, Notes: &notes,
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}
}

func wbIDs(items []domain.Analysis) []uuid.UUID {
	out := make([]uuid.UUID, len(items))
	for i := range items {
		out[i] = items[i].ID
	}
	return out
}

// key is the cache key of analysis id.
func (f *wbFixture) key(id uuid.UUID) string { return f.keys.Entity(wbResource.Kind, id.String()) }

// stream and dead are the analyses' write-behind streams.
func (f *wbFixture) stream() string {
	return streamKey(f.keys, streamsOf(WriteBehindOptions{}, wbResource.Kind))
}
func (f *wbFixture) dead() string {
	return deadLetterKey(f.keys, streamsOf(WriteBehindOptions{}, wbResource.Kind))
}

// rowCount counts the rows of ids in Postgres (ids are the primary key, so
// len(ids) means each exactly once).
func (f *wbFixture) rowCount(t *testing.T, ids []uuid.UUID) int64 {
	t.Helper()
	var n int64
	if err := f.repo.DB().Raw("SELECT count(*) FROM analyses WHERE id IN ?", ids).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// cached returns the decoded cache entry of id, ok=false when absent.
func (f *wbFixture) cached(t *testing.T, id uuid.UUID) (Entry, bool) {
	t.Helper()
	raw, err := f.rdb.Get(context.Background(), f.key(id)).Bytes()
	if err == redis.Nil {
		return Entry{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.codec.Decode(raw)
	if err != nil {
		t.Fatalf("decode cache entry of %s: %v", id, err)
	}
	return e, true
}

func (f *wbFixture) xlen(t *testing.T, key string) int64 {
	t.Helper()
	n, err := f.rdb.XLen(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// groupPending is the number of entries delivered and not acknowledged.
func (f *wbFixture) groupPending(t *testing.T) int64 {
	t.Helper()
	p, err := f.rdb.XPending(context.Background(), f.stream(), wbGroup).Result()
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

// wbWaitFor polls cond until it holds, failing after a generous deadline
// (a liveness bound, not a timing assertion).
func wbWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wbProxy forwards loopback connections to a real server and can cut them
// all, so a test sees a real Postgres become unreachable and come back.
type wbProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startWBProxy(t *testing.T, target string) *wbProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &wbProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *wbProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

func (p *wbProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// cut closes every connection and refuses new ones until restore.
func (p *wbProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *wbProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// wbViaProxy rewrites dsn to go through p, with a short connect timeout.
func wbViaProxy(t *testing.T, dsn string, p *wbProxy) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	return u.String()
}

// wbPGTarget is host:port of dsn.
func wbPGTarget(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
