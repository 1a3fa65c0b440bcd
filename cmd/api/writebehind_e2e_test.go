package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
)

// TestWriteBehindSurvivesKill9 is the promise "nothing accepted with 202 is
// ever lost": bulk batches go to a real server process from several
// clients at once; its Postgres connection is cut so that its flusher holds
// a batch it cannot commit (delivered to it, unacknowledged), and it is
// killed with SIGKILL while requests are in flight. A new process starts (a
// new consumer name) and after an admin flush every id that was answered
// 202 is in Postgres exactly once and readable.
func TestWriteBehindSurvivesKill9(t *testing.T) {
	env := testenv.Get(t)
	prefix := env.UniquePrefix("kill9") // a stream and consumer group of this run only
	overrides := map[string]string{
		"WRITE_BEHIND_BATCH_SIZE":     "20",
		"WRITE_BEHIND_FLUSH_INTERVAL": "100ms",
		"CACHE_PREFIX":                prefix,
	}
	proxy := startPGProxy(t, env.DatabaseURL)
	first := startProcess(t, map[string]string{
		"WRITE_BEHIND_BATCH_SIZE": "20", "WRITE_BEHIND_FLUSH_INTERVAL": "100ms",
		"DATABASE_URL": proxy.dsn, "CACHE_PREFIX": prefix,
	})

	var (
		mu       sync.Mutex
		accepted []uuid.UUID
		wg       sync.WaitGroup
	)
	enough := make(chan struct{})
	var once sync.Once
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				ids, ok := postBulk(first.Base, c, b)
				if !ok {
					return // the process is gone
				}
				mu.Lock()
				accepted = append(accepted, ids...)
				if len(accepted) >= 600 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	<-enough
	// Postgres goes away for the first process: its flusher now holds a
	// batch it cannot commit and retries it (write_behind_retried_total).
	proxy.cut()
	for deadline := time.Now().Add(30 * time.Second); retried(t, first.Base) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the first process never retried a flush after its Postgres was cut")
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.Kill()
	wg.Wait()
	ctx := context.Background()
	rdb := redis.NewClient(mustRedisOptions(t, env.RedisURL))
	defer rdb.Close()
	stream := prefix + "wb:stream"
	backlog := rdb.XLen(ctx, stream).Val()
	onDead := rdb.XPending(ctx, stream, "flushers").Val()
	t.Logf("kill -9 after %d ids accepted: %d not yet in Postgres, %d delivered to the dead consumer", len(accepted), backlog, onDead.Count)

	second := startProcess(t, overrides)
	resp, body := call(t, http.MethodPost, second.Base+"/api/v1/cache/write-behind/flush", "",
		"Authorization", "Bearer "+testAdminToken)
	expect(t, resp, body, http.StatusOK)

	conn, err := pgx.Connect(ctx, env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM analyses WHERE id = ANY($1)`, accepted).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(accepted) {
		t.Fatalf("%d of %d ids answered 202 are in Postgres after kill -9, restart and flush (body %s)", stored, len(accepted), body)
	}
	// Client-given ids were resent by nobody; every accepted id is distinct,
	// so stored == len(accepted) means each exactly once (id is the key).
	seen := make(map[uuid.UUID]bool, len(accepted))
	for _, id := range accepted {
		if seen[id] {
			t.Fatalf("id %s answered twice", id)
		}
		seen[id] = true
	}
	for _, id := range accepted[:20] {
		resp, body := call(t, http.MethodGet, second.Base+"/api/v1/analyses/"+id.String(), "")
		expect(t, resp, body, http.StatusOK)
	}
}

// TestBulkIDsAreWriteBehindHits: right after POST /api/v1/analyses/bulk
// answers 202, GET of each id answers 200 from Redis with X-Cache: HIT and
// X-Cache-Pattern: write-behind; still so after the flush (the entry is the
// row that won), and cache-aside once a PATCH wrote version 2 through.
func TestBulkIDsAreWriteBehindHits(t *testing.T) {
	base := startServer(t, map[string]string{"WRITE_BEHIND_FLUSH_INTERVAL": "200ms",
		"CACHE_PREFIX": testenv.Get(t).UniquePrefix("bulk")})
	ids, ok := postBulk(base, 0, 0)
	if !ok || len(ids) == 0 {
		t.Fatal("bulk ingest was not accepted")
	}
	getAll := func(when string) {
		t.Helper()
		for _, id := range ids {
			resp, body := call(t, http.MethodGet, base+"/api/v1/analyses/"+id.String(), "")
			expect(t, resp, body, http.StatusOK)
			if resp.Header.Get("X-Cache") != "HIT" || resp.Header.Get("X-Cache-Pattern") != "write-behind" {
				t.Fatalf("%s: GET %s answered X-Cache %q X-Cache-Pattern %q, want HIT write-behind",
					when, id, resp.Header.Get("X-Cache"), resp.Header.Get("X-Cache-Pattern"))
			}
		}
	}
	getAll("right after the 202")
	resp, body := call(t, http.MethodPost, base+"/api/v1/cache/write-behind/flush", "",
		"Authorization", "Bearer "+testAdminToken)
	expect(t, resp, body, http.StatusOK)
	getAll("after the flush")

	url := base + "/api/v1/analyses/" + ids[0].String()
	resp, body = call(t, http.MethodPatch, url, `{"title":"patched"}`)
	expect(t, resp, body, http.StatusOK)
	resp, body = call(t, http.MethodGet, url, "")
	expect(t, resp, body, http.StatusOK)
	if resp.Header.Get("X-Cache") != "HIT" || resp.Header.Get("X-Cache-Pattern") != "cache-aside" || resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("GET after a PATCH: X-Cache %q X-Cache-Pattern %q ETag %q, want HIT cache-aside \"2\"",
			resp.Header.Get("X-Cache"), resp.Header.Get("X-Cache-Pattern"), resp.Header.Get("ETag"))
	}
}

// postBulk sends one bulk batch of 25 items (every other one with a
// client-given id) and returns the ids of a 202, ok=false when the server
// did not answer (killed).
func postBulk(base string, client, batch int) ([]uuid.UUID, bool) {
	owner := uuid.New()
	var sb strings.Builder
	sb.WriteString(`{"items":[`)
	for i := range 25 {
		if i > 0 {
			sb.WriteByte(',')
		}
		id := ""
		if i%2 == 0 {
			id = fmt.Sprintf(`"id":%q,`, uuid.NewString())
		}
		fmt.Fprintf(&sb, `{%s"owner_id":%q,"url":"https://example.com/%d/%d/%d","title":"kill9 %d","notes":"secret"}`,
			id, owner, client, batch, i, i)
	}
	sb.WriteString(`]}`)
	resp, err := http.Post(base+"/api/v1/analyses/bulk", "application/json", strings.NewReader(sb.String()))
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return nil, resp.StatusCode == http.StatusServiceUnavailable // retry later on 503
	}
	var out struct {
		Accepted int         `json:"accepted"`
		IDs      []uuid.UUID `json:"ids"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, false // cut mid-body by the kill: not an answer
	}
	if out.Accepted != 25 || len(out.IDs) != 25 {
		return nil, false
	}
	return out.IDs, true
}

// retried reads write_behind_retried_total{resource="analysis"} from the process's /metrics.
func retried(t *testing.T, base string) float64 {
	t.Helper()
	resp, body := call(t, http.MethodGet, base+"/metrics", "")
	expect(t, resp, body, http.StatusOK)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, `write_behind_retried_total{resource="analysis"} `); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// pgProxy forwards to the test's Postgres until cut, then drops every
// connection and refuses new ones: a real outage for one process.
type pgProxy struct {
	dsn   string
	ln    net.Listener
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func startPGProxy(t *testing.T, dsn string) *pgProxy {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String()
	p := &pgProxy{dsn: u.String(), ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); s.Close() }()
			go func() { _, _ = io.Copy(c, s); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *pgProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func mustRedisOptions(t *testing.T, url string) *redis.Options {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}
