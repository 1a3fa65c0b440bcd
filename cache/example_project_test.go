package cache_test

// A second resource, Project, wired to every caching pattern of package
// cache without editing it: the walk-through of docs/adding-a-resource.md,
// compiled and run by `make test` (TestAddingAResource) so it cannot rot.
// The resource is the part above the test: its table (a migration in a real
// service), its store (repository/), its cache wiring and its use cases
// (service/). The HTTP side (handlers, validation, OpenAPI) is the same as
// for analyses and is not repeated here.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
)

// ---- Step 1: the table (migrations/0000N_create_projects.sql) ----------

const projectsDDL = `CREATE TABLE IF NOT EXISTS projects (
    id         uuid        PRIMARY KEY,
    owner_id   uuid        NOT NULL,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    version    bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS projects_owner ON projects (owner_id, created_at DESC, id DESC);`

// ---- Step 2: the entity and its store (domain/, repository/) ----------

// Project is the entity; its JSON is the exact body the API serves and the
// cache holds.
type Project struct {
	ID        uuid.UUID `json:"id"`
	OwnerID   uuid.UUID `json:"owner_id"`
	Name      string    `json:"name"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// projectStore writes each change and its invalidation-log row in ONE
// statement (repository.LogChangeCTE), so no committed change is ever
// without its invalidation.
type projectStore struct {
	db    *pgxpool.Pool
	scope string // repository.Postgres.Scope(): the cache this log is for
}

const projectColumns = "id, owner_id, name, version, created_at, updated_at"

func scanProject(row pgx.Row, extra ...any) (*Project, error) {
	var p Project
	err := row.Scan(append([]any{&p.ID, &p.OwnerID, &p.Name, &p.Version, &p.CreatedAt, &p.UpdatedAt}, extra...)...)
	return &p, err
}

// write runs one CTE "w" returning the changed row, logs it, and returns
// the row and the log's id of the change.
func (s *projectStore) write(ctx context.Context, w string, deleted bool, args ...any) (*Project, int64, error) {
	sql := "WITH w AS (" + w + " RETURNING " + projectColumns + ")" +
		repository.LogChangeCTE("project", "owner_id", fmt.Sprintf("$%d", len(args)+1), fmt.Sprint(deleted)) +
		" SELECT w.*, o.id FROM w, o"
	var change int64
	p, err := scanProject(s.db.QueryRow(ctx, sql, append(args, s.scope)...), &change)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, cache.ErrNotFound
	}
	// Outage → EUNAVAILABLE, taken id → "Project already exists", …
	return p, change, repository.Translate("Project", "write project", err)
}

func (s *projectStore) Create(ctx context.Context, owner uuid.UUID, name string) (*Project, int64, error) {
	return s.write(ctx, "INSERT INTO projects ("+projectColumns+") VALUES ($1, $2, $3, 1, now(), now())", false,
		uuid.New(), owner, name)
}

func (s *projectStore) Rename(ctx context.Context, id uuid.UUID, name string) (*Project, int64, error) {
	return s.write(ctx, "UPDATE projects SET name = $2, version = version + 1, updated_at = now() WHERE id = $1", false, id, name)
}

func (s *projectStore) Delete(ctx context.Context, id uuid.UUID) (*Project, int64, error) {
	return s.write(ctx, "DELETE FROM projects WHERE id = $1", true, id)
}

func (s *projectStore) Get(ctx context.Context, id uuid.UUID) (*Project, error) {
	p, err := scanProject(s.db.QueryRow(ctx, "SELECT "+projectColumns+" FROM projects WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cache.ErrNotFound
	}
	return p, repository.Translate("Project", "get project", err) // an outage is EUNAVAILABLE (503)
}

// ListByGroup is one page of an owner's projects, newest first: the source
// of the read-through per-owner lists (cache.GroupLister).
func (s *projectStore) ListByGroup(ctx context.Context, owner string, skip, limit int) ([]Project, error) {
	return s.list(ctx, "WHERE owner_id = $1 ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT $3", owner, skip, limit)
}

// ListNamed is the filtered list behind the namespace cache.
func (s *projectStore) ListNamed(ctx context.Context, name string) ([]Project, error) {
	return s.list(ctx, "WHERE name = $1 ORDER BY created_at DESC, id DESC", name)
}

func (s *projectStore) list(ctx context.Context, where string, args ...any) ([]Project, error) {
	rows, err := s.db.Query(ctx, "SELECT "+projectColumns+" FROM projects "+where, args...)
	if err != nil {
		return nil, repository.Translate("Project", "list projects", err)
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Project, error) {
		p, err := scanProject(r)
		return *p, err
	})
	return ps, repository.Translate("Project", "list projects", err)
}

// InsertMissing inserts the projects whose id is absent and logs them as
// one change, in one statement (cache.BulkStore, for write-behind).
func (s *projectStore) InsertMissing(ctx context.Context, ps []Project) ([]string, int64, error) {
	cols := make([][]any, 6)
	for _, p := range ps {
		for i, v := range []any{p.ID, p.OwnerID, p.Name, p.Version, p.CreatedAt, p.UpdatedAt} {
			cols[i] = append(cols[i], v)
		}
	}
	sql := `WITH w AS (INSERT INTO projects (` + projectColumns + `)
  SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::timestamptz[], $6::timestamptz[])
  ON CONFLICT (id) DO NOTHING RETURNING id, owner_id)` + repository.LogBatchCTE("project", "owner_id", "$7") + `
SELECT w.id::text, (SELECT id FROM o) FROM w`
	rows, err := s.db.Query(ctx, sql, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], s.scope)
	if err != nil {
		return nil, 0, storeErr(err)
	}
	var inserted []string // RETURNING returns only the rows inserted
	var id string
	var change int64
	_, err = pgx.ForEachRow(rows, []any{&id, &change}, func() error {
		inserted = append(inserted, id)
		return nil
	})
	return inserted, change, storeErr(err)
}

// ExistingIDs returns those of ids that are stored (cache.BulkStore).
func (s *projectStore) ExistingIDs(ctx context.Context, ids []string) ([]string, error) {
	rows, err := s.db.Query(ctx, "SELECT id::text FROM projects WHERE id = ANY($1::uuid[])", ids)
	if err != nil {
		return nil, storeErr(err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return found, storeErr(err)
}

// storeErr marks an outage so write-behind retries it instead of
// dead-lettering the batch.
func storeErr(err error) error {
	if err != nil && domain.ErrorCode(repository.Translate("Project", "write-behind", err)) == domain.EUNAVAILABLE {
		return fmt.Errorf("%w: %w", cache.ErrStoreUnavailable, err)
	}
	return err
}

// Stored reloads the bodies of ids for the invalidation log (cache.LoadStored).
func (s *projectStore) Stored(ctx context.Context, ids []string) ([]cache.Stored, error) {
	ps, err := s.list(ctx, "WHERE id = ANY($1::uuid[])", ids)
	out := make([]cache.Stored, len(ps))
	for i, p := range ps {
		out[i] = cache.Stored{ID: p.ID.String(), Version: p.Version, Body: mustJSON(p)}
	}
	return out, err
}

// ---- Step 3: the cache wiring (cmd/api/app.go) -------------------------

// ProjectResource names the project caches: entries "project:{id}", filtered
// lists in the namespace "projects", per-owner lists tagged "owner:{id}".
var ProjectResource = cache.Resource{Kind: "project", Lists: "projects", Group: "owner", AllGroups: "projects"}

// jsonEncoding is the cache.Encoding of any JSON value.
type jsonEncoding[T any] struct{}

func (jsonEncoding[T]) Append(dst []byte, v T) []byte { return append(dst, mustJSON(v)...) }
func (jsonEncoding[T]) Parse(body []byte) (v T, err error) {
	err = json.Unmarshal(body, &v)
	return v, err
}

// projectEntities is the cache.EntityCodec of projects (for write-behind).
type projectEntities struct{ jsonEncoding[Project] }

func (projectEntities) ID(p Project) string     { return p.ID.String() }
func (projectEntities) Group(p Project) string  { return p.OwnerID.String() }
func (projectEntities) Version(p Project) int64 { return p.Version }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// ---- Step 4: the use cases (service/) ----------------------------------

// Projects picks one pattern per use case, exactly like service.Analyses
// and service.Lists do for analyses.
type Projects struct {
	store   *projectStore
	aside   *cache.Aside                  // cache-aside reads
	writes  *cache.WriteThrough           // write-through writes, settled by the log
	named   *cache.Namespace              // a cached filtered list
	byOwner *cache.ReadThrough[[]Project] // a read-through list
	imports *cache.WriteBehind[Project]   // write-behind bulk import
}

func NewProjects(b cache.Backend, store *projectStore, log *cache.Log) *Projects {
	aside := cache.NewAside(b, ProjectResource, cache.AsideOptions{})
	lists := cache.NewListInvalidation(b, ProjectResource)
	return &Projects{
		store:   store,
		aside:   aside,
		writes:  cache.NewWriteThrough(aside, lists, log, store.Stored),
		named:   cache.NewNamespace(b, ProjectResource, cache.PageOptions{}),
		byOwner: cache.NewReadThrough(b, ProjectResource, store, jsonEncoding[[]Project]{}, cache.PageOptions{}),
		imports: cache.NewWriteBehind(b, ProjectResource, store, projectEntities{}, lists, cache.WriteBehindOptions{Log: log}),
	}
}

// Get is cache-aside: ErrNotFound is cached as a negative entry.
func (s *Projects) Get(ctx context.Context, id uuid.UUID) (cache.Result, error) {
	return s.aside.Get(ctx, id.String(), func(ctx context.Context) ([]byte, int64, error) {
		p, err := s.store.Get(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		return mustJSON(p), p.Version, nil
	})
}

// Create, Rename and Delete are write-through: the entry and the lists
// are updated before the write answers, settled by the log.
func (s *Projects) Create(ctx context.Context, owner uuid.UUID, name string) (*Project, error) {
	p, change, err := s.store.Create(ctx, owner, name)
	if err == nil {
		s.writes.Written(ctx, change, p.ID.String(), p.OwnerID.String(), p.Version, mustJSON(p))
	}
	return p, err
}

func (s *Projects) Rename(ctx context.Context, id uuid.UUID, name string) (*Project, error) {
	p, change, err := s.store.Rename(ctx, id, name)
	if err == nil {
		s.writes.Written(ctx, change, p.ID.String(), p.OwnerID.String(), p.Version, mustJSON(p))
	}
	return p, err
}

func (s *Projects) Delete(ctx context.Context, id uuid.UUID) error {
	p, change, err := s.store.Delete(ctx, id)
	if err == nil {
		s.writes.Deleted(ctx, change, p.ID.String(), p.OwnerID.String(), p.Version)
	}
	return err
}

// Named is a cached filtered list (version invalidation).
func (s *Projects) Named(ctx context.Context, name string) (cache.Result, error) {
	return s.named.Get(ctx, "name="+name, func(ctx context.Context) ([]byte, error) {
		ps, err := s.store.ListNamed(ctx, name)
		return mustJSON(ps), err
	})
}

// ByOwner is a read-through list (tag invalidation).
func (s *Projects) ByOwner(ctx context.Context, owner uuid.UUID, skip, limit int) (cache.Result, error) {
	return s.byOwner.Get(ctx, owner.String(), skip, limit)
}

// Import accepts projects written behind: readable at once from Redis,
// committed to Postgres by a flusher (imports.Run, or Flush).
func (s *Projects) Import(ctx context.Context, owner uuid.UUID, names ...string) ([]Project, error) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	ps := make([]Project, len(names))
	generated := make([]bool, len(names))
	for i, name := range names {
		ps[i] = Project{ID: uuid.New(), OwnerID: owner, Name: name, Version: 1, CreatedAt: now, UpdatedAt: now}
		generated[i] = true
	}
	return ps, s.imports.Enqueue(ctx, ps, generated)
}

// ---- The walk-through, run ----------------------------------------------

// TestAddingAResource wires Project as docs/adding-a-resource.md says and
// checks every pattern on it: reads are served from Redis after the first,
// every write is visible to the next read of the entry and of both lists,
// a delete is a cached 404, and every change is settled in the log.
func TestAddingAResource(t *testing.T) {
	ctx := context.Background()
	env := testenv.Get(t)
	prefix := env.UniquePrefix("project")

	// Postgres: the service's repository (the invalidation log and its
	// migrations) and the project store beside it, on one database.
	pg, err := repository.OpenWithOptions(ctx, env.DatabaseURL, slog.New(slog.DiscardHandler), repository.Options{ChangeScope: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	if err := pg.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(ctx, projectsDDL); err != nil {
		t.Fatal(err)
	}
	store := &projectStore{db: pool, scope: pg.Scope()}

	// Redis: one Backend for every pattern, one Log per process.
	opt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	codec, err := cache.NewCodecFromEnv("", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	gate := cache.NewGate() // closed until the log has caught up
	b := cache.Backend{Redis: rdb, Keys: cache.Keys{Prefix: prefix}, Codec: codec,
		Metrics: cache.NewMetrics(nil, slog.New(slog.DiscardHandler)), Gate: gate, Logger: slog.New(slog.DiscardHandler)}
	log := cache.NewLog(pg, b, cache.LogOptions{})
	projects := NewProjects(b, store, log)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); log.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	testenv.PollUntil(t, "the log's first catch-up opens the gate", gate.Open)

	status := func(res cache.Result, err error) string {
		t.Helper()
		if err != nil && !errors.Is(err, cache.ErrNotFound) {
			t.Fatal(err)
		}
		return string(res.Status)
	}
	body := func(res cache.Result, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return string(res.Body)
	}

	owner := uuid.New()
	p, err := projects.Create(ctx, owner, "apollo")
	if err != nil {
		t.Fatal(err)
	}

	// Cache-aside + write-through: the create filled the entry.
	if got := status(projects.Get(ctx, p.ID)); got != "HIT" {
		t.Fatalf("get after create: %s, want HIT (written through)", got)
	}
	// A cached 404: the first read misses, the second is a negative HIT.
	missing := uuid.New()
	if _, err := projects.Get(ctx, missing); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("get missing: %v, want ErrNotFound", err)
	}
	if got := status(projects.Get(ctx, missing)); got != "HIT" {
		t.Fatalf("second get of a missing project: %s, want a negative HIT", got)
	}

	// Both lists: a miss fills, the next read hits.
	for _, read := range []func() (cache.Result, error){
		func() (cache.Result, error) { return projects.Named(ctx, "apollo") },
		func() (cache.Result, error) { return projects.ByOwner(ctx, owner, 0, 10) },
	} {
		if got := status(read()); got != "MISS" {
			t.Fatalf("first list read: %s, want MISS", got)
		}
		if got := status(read()); got != "HIT" {
			t.Fatalf("second list read: %s, want HIT", got)
		}
	}

	// A write is visible to the next read of the entry and of both lists.
	if _, err := projects.Rename(ctx, p.ID, "artemis"); err != nil {
		t.Fatal(err)
	}
	var got Project
	if err := json.Unmarshal([]byte(body(projects.Get(ctx, p.ID))), &got); err != nil || got.Name != "artemis" || got.Version != 2 {
		t.Fatalf("entry after rename: %+v (%v), want artemis at version 2", got, err)
	}
	if b := body(projects.Named(ctx, "apollo")); b != "[]" {
		t.Fatalf("list of apollo after the rename: %s, want []", b)
	}
	var mine []Project
	if err := json.Unmarshal([]byte(body(projects.ByOwner(ctx, owner, 0, 10))), &mine); err != nil || len(mine) != 1 || mine[0].Name != "artemis" {
		t.Fatalf("owner's list after the rename: %+v (%v)", mine, err)
	}

	// A delete tombstones the entry: a cached 404, never the old body.
	if err := projects.Delete(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	res, err := projects.Get(ctx, p.ID)
	if !errors.Is(err, cache.ErrNotFound) || res.Status != cache.Hit {
		t.Fatalf("get after delete: %s %v, want a HIT with ErrNotFound", res.Status, err)
	}
	if b := body(projects.ByOwner(ctx, owner, 0, 10)); b != "[]" {
		t.Fatalf("owner's list after the delete: %s, want []", b)
	}

	// Write-behind: an import is readable at once (a write-behind HIT), and
	// once flushed it is in Postgres and in its owner's list.
	imported, err := projects.Import(ctx, owner, "gemini", "mercury")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := projects.Get(ctx, imported[0].ID); err != nil || res.Status != cache.Hit || res.Pattern != cache.PatternWriteBehind {
		t.Fatalf("get of an imported project: %s %s %v, want a write-behind HIT", res.Status, res.Pattern, err)
	}
	if n, err := projects.imports.Flush(ctx); err != nil || n != 2 {
		t.Fatalf("flush: %d %v, want 2", n, err)
	}
	if err := json.Unmarshal([]byte(body(projects.ByOwner(ctx, owner, 0, 10))), &mine); err != nil || len(mine) != 2 {
		t.Fatalf("owner's list after the import: %+v (%v), want the 2 imported projects", mine, err)
	}

	// Every change was applied by its writer and is settled in the log.
	testenv.PollUntil(t, "the writes are marked applied", func() bool {
		pending, err := pg.Pending(ctx, nil, 0, 10)
		return err == nil && len(pending) == 0
	})
}
