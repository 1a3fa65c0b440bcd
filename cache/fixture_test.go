package cache

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
	"github.com/analysis-cache/service/repository/repotest"
)

// testResource is the analyses resource as the service declares it
// (service.AnalysisResource, which these tests cannot import: service
// imports cache): entries "analysis:{id}", list pages in the namespace
// "analyses", per-owner lists tagged "user:{owner}" and "analyses".
var testResource = Resource{Kind: domain.AnalysisKind, Lists: "analyses", Group: "user", AllGroups: "analyses"}

// quietLog discards what the patterns log in tests that provoke failures.
var quietLog = slog.New(slog.DiscardHandler)

// listsFixture is what the list caches' tests share: the real Redis under a
// prefix of their own, a codec with a random key, fresh metrics and an open gate.
type listsFixture struct {
	rdb     *redis.Client
	keys    Keys
	codec   *Codec
	metrics *Metrics
	gate    *Gate
}

func newListsFixture(t *testing.T) *listsFixture {
	t.Helper()
	env := testenv.Get(t)
	opt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatalf("parse redis url: %v", err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	return &listsFixture{
		rdb: rdb, keys: Keys{Prefix: env.RedisPrefix + "lists-" + listsRandom(t) + ":"},
		codec: listsCodec(t), metrics: NewMetrics(nil, nil), gate: &Gate{},
	}
}

// backend is the fixture's Backend on its own Redis client.
func (f *listsFixture) backend() Backend { return f.backendOn(f.rdb) }

// backendOn is the fixture's Backend with another Redis client (a dead
// one, or one that misbehaves).
func (f *listsFixture) backendOn(rdb Client) Backend {
	return Backend{Redis: rdb, Keys: f.keys, Codec: f.codec, Metrics: f.metrics, Gate: f.gate, Logger: quietLog}
}

func listsRandom(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := crand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func listsCodec(t *testing.T) *Codec {
	key := make([]byte, 32)
	if _, err := crand.Read(key); err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// listsDeadRedis is a client of a port nothing listens on: every command fails fast.
func listsDeadRedis(t *testing.T) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

var (
	listsPGOnce sync.Once
	listsPG     *repository.Postgres
	listsPGErr  error
)

// listsPostgres is the real repository on the package's database, migrated.
func listsPostgres(t *testing.T) *repository.Postgres {
	t.Helper()
	listsPGOnce.Do(func() {
		ctx := context.Background()
		listsPG, listsPGErr = repository.Open(ctx, testenv.Get(t).DatabaseURL, nil)
		if listsPGErr == nil {
			listsPGErr = listsPG.Migrate(ctx)
		}
	})
	if listsPGErr != nil {
		t.Fatalf("postgres: %v", listsPGErr)
	}
	return listsPG
}

func listsCreate(t *testing.T, repo domain.AnalysisRepository, owner uuid.UUID, title string) domain.Analysis {
	t.Helper()
	a := repotest.NewAnalysis(owner, title)
	if _, err := repo.Create(context.Background(), &a); err != nil {
		t.Fatalf("create: %v", err)
	}
	return a
}

// ownerLists is repo's ListByOwner as the source of a read-through cache,
// the group being the owner's id (as service.OwnerLists).
func ownerLists(repo domain.AnalysisRepository) GroupLister[domain.Page] {
	return GroupListerFunc[domain.Page](func(ctx context.Context, owner string, skip, limit int) (domain.Page, error) {
		id, err := uuid.Parse(owner)
		if err != nil {
			return domain.Page{}, fmt.Errorf("owner %q: %w", owner, err)
		}
		return repo.ListByOwner(ctx, id, skip, limit)
	})
}

// pageEncoding is the Encoding of a page: the exact PaginatedAnalyses body
// (as service.PageEncoding).
type pageEncoding struct{}

func (pageEncoding) Append(dst []byte, p domain.Page) []byte { return p.AppendJSON(dst) }
func (pageEncoding) Parse(body []byte) (domain.Page, error)  { return domain.ParsePageJSON(body) }

// newOwnerLists is the read-through cache of per-owner lists of repo on b.
func newOwnerLists(b Backend, repo domain.AnalysisRepository, opt PageOptions) *ReadThrough[domain.Page] {
	return NewReadThrough(b, testResource, ownerLists(repo), pageEncoding{}, opt)
}

// storedAnalyses is how the Log reloads the analyses a change touched (as
// the service's): the rows of repo among ids, as the bodies their entries cache.
func storedAnalyses(repo domain.AnalysisRepository) LoadStored {
	return func(ctx context.Context, ids []string) ([]Stored, error) {
		parsed := make([]uuid.UUID, 0, len(ids))
		for _, id := range ids {
			u, err := uuid.Parse(id)
			if err != nil {
				return nil, fmt.Errorf("analysis id %q: %w", id, err)
			}
			parsed = append(parsed, u)
		}
		rows, err := repo.Rows(ctx, parsed)
		if err != nil {
			return nil, err
		}
		out := make([]Stored, len(rows))
		for i, a := range rows {
			out[i] = Stored{ID: a.ID.String(), Version: a.Version, Body: a.AppendJSON(nil)}
		}
		return out, nil
	}
}

// counterValue is the value of the counter name with exactly labels in
// what reg gathers; 0 when there is no such series.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
