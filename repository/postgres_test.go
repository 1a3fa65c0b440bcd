package repository

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository/repotest"
)

func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }

var migrateOnce sync.Once

// openTestRepo opens a repository on the package's database, migrated, and
// closes it when t ends.
func openTestRepo(t testing.TB, log *slog.Logger) *Postgres {
	t.Helper()
	env := testenv.Get(t)
	p, err := Open(context.Background(), env.DatabaseURL, log)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	var merr error
	migrateOnce.Do(func() { merr = p.Migrate(context.Background()) })
	if merr != nil {
		t.Fatalf("Migrate: %v", merr)
	}
	return p
}

func TestSuite(t *testing.T) {
	p := openTestRepo(t, nil)
	repotest.RunSuite(t, func(t *testing.T) domain.AnalysisRepository {
		repotest.TruncateAnalyses(t, p.sql)
		return p
	})
}

func TestCopyAnalysesConflict(t *testing.T) {
	p := openTestRepo(t, nil)
	repotest.TruncateAnalyses(t, p.sql)
	items := seedItems(10, uuid.New())
	if n, err := p.CopyAnalyses(context.Background(), items); err != nil || n != 10 {
		t.Fatalf("CopyAnalyses: %d, %v", n, err)
	}
	_, err := p.CopyAnalyses(context.Background(), items[:1])
	if domain.ErrorCode(err) != domain.ECONFLICT {
		t.Fatalf("CopyAnalyses of a taken id: %v, want ECONFLICT", err)
	}
}

// TestUpdateRowLock forces two updates of one row into the window between
// read and write. With SELECT ... FOR UPDATE the second blocks on the row
// lock until the first commits, then sees its result: with If-Match it gets
// EPRECONDITION, without it applies on top (no lost update). The test waits
// until the second is either blocked on a lock in Postgres or inside the
// window itself; without the lock it gets inside, and the assertions fail.
// TestConcurrentUpdatesLoseNothing runs patches of one row at once, each
// one statement (UPDATE ... RETURNING with the outbox insert): every patch
// survives, the version grows by exactly one per change, every change is in
// the invalidation log, and with one If-Match version exactly one patch wins.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	ctx := context.Background()
	p := openTestRepo(t, nil)
	const n = 8
	t.Run("NoLostUpdate", func(t *testing.T) {
		a := repotest.NewAnalysis(uuid.New(), "concurrent")
		if _, err := p.Create(ctx, &a); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		changes := make([]domain.Change, n)
		updated := make([]*domain.Analysis, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				// Each patch sets a different field value: a lost update
				// would drop one of the tags below.
				tags := []string{fmt.Sprintf("t%d", i)}
				updated[i], changes[i], errs[i] = p.Update(ctx, a.ID, domain.AnalysisPatch{Title: ptrTo(fmt.Sprintf("by %d", i)), Tags: &tags}, nil)
			})
		}
		wg.Wait()
		seen := map[int64]bool{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("patch %d: %v", i, errs[i])
			}
			if changes[i].ID == 0 || seen[updated[i].Version] {
				t.Fatalf("patch %d: change %+v at version %d (versions must be distinct and logged)", i, changes[i], updated[i].Version)
			}
			seen[updated[i].Version] = true
		}
		final, err := p.Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if final.Version != n+1 {
			t.Fatalf("final version %d, want %d: an update was lost", final.Version, n+1)
		}
	})
	t.Run("IfMatchOneWinner", func(t *testing.T) {
		a := repotest.NewAnalysis(uuid.New(), "if-match")
		if _, err := p.Create(ctx, &a); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				_, _, errs[i] = p.Update(ctx, a.ID, domain.AnalysisPatch{Title: ptrTo(fmt.Sprintf("by %d", i))}, ptrTo(int64(1)))
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch domain.ErrorCode(err) {
			case "":
				won++
			case domain.EPRECONDITION:
			default:
				t.Fatalf("patch %d: %v", i, err)
			}
		}
		final, err := p.Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if won != 1 || final.Version != 2 {
			t.Fatalf("%d patches won with If-Match 1, final version %d: want exactly one, version 2", won, final.Version)
		}
	})
	t.Run("NoOpLogsNothing", func(t *testing.T) {
		a := repotest.NewAnalysis(uuid.New(), "no-op")
		if _, err := p.Create(ctx, &a); err != nil {
			t.Fatal(err)
		}
		got, change, err := p.Update(ctx, a.ID, domain.AnalysisPatch{Title: ptrTo(a.Title)}, nil)
		if err != nil || change.ID != 0 || got.Version != 1 {
			t.Fatalf("no-op patch: %+v %+v %v: want version 1 and no change logged", got, change, err)
		}
	})
}

func ptrTo[T any](v T) *T { return &v }

// TestUnavailable points a repository at a closed port: every method must
// answer EUNAVAILABLE, which the API turns into 503 Database unavailable.
func TestUnavailable(t *testing.T) {
	const dsn = "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"
	ctx := context.Background()
	_, err := Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if domain.ErrorCode(err) != domain.EUNAVAILABLE {
		t.Fatalf("Open: %v, want EUNAVAILABLE", err)
	}
	p, err := openLazy(dsn, slog.New(slog.DiscardHandler), DefaultOptions())
	if err != nil {
		t.Fatalf("openLazy: %v", err)
	}
	defer p.Close()
	a := repotest.NewAnalysis(uuid.New(), "x")
	calls := map[string]func() error{
		"Get":    func() error { _, err := p.Get(ctx, a.ID); return err },
		"Create": func() error { _, err := p.Create(ctx, &a); return err },
		"List":   func() error { _, err := p.List(ctx, domain.ListFilter{Limit: 5}); return err },
		"Update": func() error { _, _, err := p.Update(ctx, a.ID, domain.AnalysisPatch{}, nil); return err },
		"Delete": func() error { _, _, err := p.Delete(ctx, a.ID, nil); return err },
		"InsertMissing": func() error {
			_, _, err := p.InsertMissing(ctx, []domain.Analysis{a})
			return err
		},
		"Stats":   func() error { _, err := p.Stats(ctx); return err },
		"Ping":    func() error { return p.Ping(ctx) },
		"Migrate": func() error { return p.Migrate(ctx) },
	}
	for name, call := range calls {
		err := call()
		if domain.ErrorCode(err) != domain.EUNAVAILABLE || domain.ErrorMessage(err) != "Database unavailable" {
			t.Errorf("%s: %v, want EUNAVAILABLE \"Database unavailable\"", name, err)
		}
	}
}

// TestConnectionKilled terminates the repository's server connection (as a
// Postgres restart or failover does): the next call either succeeds on a new
// connection or reports EUNAVAILABLE, never an internal error, and the pool
// recovers.
func TestConnectionKilled(t *testing.T) {
	ctx := context.Background()
	env := testenv.Get(t)
	opts := DefaultOptions()
	opts.MaxOpenConns, opts.MaxIdleConns = 1, 1
	p, err := OpenWithOptions(ctx, env.DatabaseURL, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	observer := openTestRepo(t, nil)
	a := repotest.NewAnalysis(uuid.New(), "survivor")
	if _, err := p.Create(ctx, &a); err != nil {
		t.Fatal(err)
	}
	var pid int64
	if err := p.db.Raw("SELECT pg_backend_pid()").Scan(&pid).Error; err != nil {
		t.Fatal(err)
	}
	var killed bool
	if err := observer.db.Raw("SELECT pg_terminate_backend(?)", pid).Scan(&killed).Error; err != nil || !killed {
		t.Fatalf("terminate backend %d: %v %v", pid, killed, err)
	}
	testenv.PollUntil(t, "backend gone", func() bool {
		var n int64
		_ = observer.db.Raw("SELECT count(*) FROM pg_stat_activity WHERE pid = ?", pid).Scan(&n).Error
		return n == 0
	})
	if _, err := p.Get(ctx, a.ID); err != nil && domain.ErrorCode(err) != domain.EUNAVAILABLE {
		t.Fatalf("Get on a killed connection: %v, want success or EUNAVAILABLE", err)
	}
	if _, err := p.Get(ctx, a.ID); err != nil {
		t.Fatalf("Get after reconnect: %v", err)
	}
}

func TestTranslate(t *testing.T) {
	cases := []struct {
		err  error
		code string
	}{
		{&pgconn.PgError{Code: "57P01"}, domain.EUNAVAILABLE},
		{&pgconn.PgError{Code: "08006"}, domain.EUNAVAILABLE},
		{&pgconn.PgError{Code: "53300"}, domain.EUNAVAILABLE},
		{fmt.Errorf("begin: %w", driver.ErrBadConn), domain.EUNAVAILABLE},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, domain.EUNAVAILABLE},
		{&pgconn.PgError{Code: "23514"}, domain.EINVALID},
		{&pgconn.PgError{Code: "42P01"}, domain.EINTERNAL},
		{context.Canceled, domain.EINTERNAL},
		{errors.New("boom"), domain.EINTERNAL},
	}
	for _, c := range cases {
		got := translate("get analysis 42", c.err)
		if domain.ErrorCode(got) != c.code || !errors.Is(got, c.err) || !strings.Contains(got.Error(), "get analysis 42: ") {
			t.Errorf("translate(%v) = %v (code %s), want code %s wrapping the cause with the operation", c.err, got, domain.ErrorCode(got), c.code)
		}
	}
	if translate("op", nil) != nil {
		t.Error("translate(nil) != nil")
	}
}

// TestTranslateNamesTheEntity: another resource's store gets its own
// messages ("Project already exists"), not the analyses'.
func TestTranslateNamesTheEntity(t *testing.T) {
	for code, want := range map[string]string{"23505": "Project already exists", "23514": "Project violates a constraint"} {
		var de *domain.Error
		if err := Translate("Project", "create project 1", &pgconn.PgError{Code: code}); !errors.As(err, &de) || de.Message != want {
			t.Errorf("Translate(Project, %s) = %v, want the message %q", code, err, want)
		}
	}
}

// TestTagsRoundTrip stores tags that need quoting in Postgres' array text
// format and reads them back unchanged; an empty tag travels as an element
// too, which the schema refuses (tags items minLength).
func TestTagsRoundTrip(t *testing.T) {
	p := openTestRepo(t, nil)
	tags := []string{" ", "a,b", `q"uote`, `back\slash`, "{x}", "NULL", "null", "é ü 東京 🙂", "a\tb\nc", "'single'"}
	a := repotest.NewAnalysis(uuid.New(), "tags")
	a.Tags = tags
	if _, err := p.Create(context.Background(), &a); err != nil {
		t.Fatal(err)
	}
	got, err := p.Get(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%q", got.Tags) != fmt.Sprintf("%q", tags) {
		t.Fatalf("tags %q, want %q", got.Tags, tags)
	}
	empty := repotest.NewAnalysis(uuid.New(), "tags")
	empty.Tags = []string{"x", ""}
	if _, err := p.Create(context.Background(), &empty); domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("Create with an empty tag: %v, want EINVALID", err)
	}
}

// TestTextArrayScan: the text form of text[] (what database/sql hands
// over) is read back element for element; what Postgres never writes for
// this column (a NULL element, a broken literal) is an error.
func TestTextArrayScan(t *testing.T) {
	good := map[string][]string{
		`{}`:                  {},
		`{a}`:                 {"a"},
		`{a,b}`:               {"a", "b"},
		`{"a b","",c}`:        {"a b", "", "c"},
		`{"q\"x","b\\s"}`:     {`q"x`, `b\s`},
		`{"NULL"}`:            {"NULL"},
		`{"{x}","a,b",é}`:     {"{x}", "a,b", "é"},
		`{"",""}`:             {"", ""},
		`{abc,"d\\",e}`:       {"abc", `d\`, "e"},
		`{x,"y",z}`:           {"x", "y", "z"},
		`{"\\\"",plain text}`: {`\"`, "plain text"},
	}
	for in, want := range good {
		for _, src := range []any{in, []byte(in)} {
			var got textArray
			err := got.Scan(src)
			if err != nil || fmt.Sprintf("%q", []string(got)) != fmt.Sprintf("%q", want) {
				t.Errorf("Scan(%s) = %q, %v; want %q", in, got, err, want)
			}
		}
	}
	for _, bad := range []string{``, `{`, `a`, `{NULL}`, `{"a}`} {
		var got textArray
		if err := got.Scan(bad); err == nil {
			t.Errorf("Scan(%s) = %q, want an error", bad, got)
		}
	}
	var null textArray = textArray{"x"}
	if err := null.Scan(nil); err != nil || null != nil {
		t.Errorf("Scan(nil) = %q, %v; want nil", null, err)
	}
}

// TestLogHasNoValues makes a statement fail with a secret in its bound
// values and checks the statement is logged with placeholders only.
func TestLogHasNoValues(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := openTestRepo(t, log)
	a := repotest.NewAnalysis(uuid.New(), "secret-title-4711")
	a.Notes = ptrTo("secret-notes-4711")
	a.Score = ptrTo(2.0) // violates the CHECK: the INSERT fails
	_, err := p.Create(context.Background(), &a)
	if domain.ErrorCode(err) != domain.EINVALID {
		t.Fatalf("Create with score 2: %v, want EINVALID", err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, "postgres statement failed") || !strings.Contains(out, "INSERT INTO") {
		t.Fatalf("the failed statement was not logged: %s", out)
	}
	if strings.Contains(out, "4711") {
		t.Fatalf("log contains a bound value: %s", out)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// TestQueriesUseIndexes checks the planner CAN serve each list filter from
// its index (sequential scans disabled, so a tiny table does not hide a
// missing or unusable index).
func TestQueriesUseIndexes(t *testing.T) {
	p := openTestRepo(t, nil)
	owner, status, tag := uuid.New(), domain.StatusFailed, "go"
	cases := map[string]struct {
		filter domain.ListFilter
		index  string
	}{
		"all":    {domain.ListFilter{}, "analyses_created_id_idx"},
		"owner":  {domain.ListFilter{OwnerID: &owner}, "analyses_owner_created_id_idx"},
		"status": {domain.ListFilter{Status: &status}, "analyses_status_created_id_idx"},
		"tag":    {domain.ListFilter{Tag: &tag}, "analyses_tags_gin_idx"},
	}
	for name, c := range cases {
		where, args := listWhere(c.filter)
		q := "EXPLAIN SELECT " + columns + " FROM analyses" + where + " ORDER BY created_at DESC, id DESC LIMIT 20"
		var plan []string
		err := p.db.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SET LOCAL enable_seqscan = off").Error; err != nil {
				return err
			}
			return tx.Raw(q, args...).Scan(&plan).Error
		})
		if err != nil {
			t.Fatalf("%s: explain: %v", name, err)
		}
		if text := strings.Join(plan, "\n"); !strings.Contains(text, c.index) {
			t.Errorf("%s: plan does not use %s:\n%s", name, c.index, text)
		}
	}
}

// seedItems returns n valid analyses of owner with distinct ids.
func seedItems(n int, owner uuid.UUID) []domain.Analysis {
	items := make([]domain.Analysis, n)
	t := now()
	for i := range items {
		a := repotest.NewAnalysis(owner, fmt.Sprintf("seed-%d", i))
		a.Tags = []string{"seed", fmt.Sprintf("t%d", i%50)}
		a.Version, a.CreatedAt, a.UpdatedAt = 1, t.Add(-time.Duration(i)*time.Microsecond), t
		items[i] = a
	}
	return items
}

// TestListTagWithNUL: a tag filter holding U+0000 (which Postgres cannot
// take as text) matches nothing instead of failing, with or without other
// filters and rows.
func TestListTagWithNUL(t *testing.T) {
	p := openTestRepo(t, nil)
	repotest.TruncateAnalyses(t, p.sql)
	owner := uuid.New()
	if _, err := p.CopyAnalyses(context.Background(), seedItems(3, owner)); err != nil {
		t.Fatalf("seed: %v", err)
	}
	for _, tag := range []string{"\x00", "seed\x00", "a\x00b"} {
		for _, f := range []domain.ListFilter{{Tag: &tag}, {Tag: &tag, OwnerID: &owner, Skip: 1}} {
			page, err := p.List(context.Background(), f)
			if err != nil || page.Count != 0 || len(page.Data) != 0 {
				t.Errorf("tag %q: %+v, %v", tag, page, err)
			}
			if got := string(page.AppendJSON(nil)); got != `{"data":[],"count":0}` {
				t.Errorf("tag %q: body %s", tag, got)
			}
		}
	}
	seed := "seed"
	if page, err := p.List(context.Background(), domain.ListFilter{Tag: &seed}); err != nil || page.Count != 3 {
		t.Errorf("tag without NUL: %d, %v", page.Count, err)
	}
}
