package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/analysis-cache/service/internal/scratch"
	"github.com/analysis-cache/service/internal/testenv"
)

// Workload shape and phase lengths. Measurements are logged, never
// asserted; the only waits with a deadline (patience, convergeFor) are
// generous enough for a loaded machine.
const (
	clients       = 10
	owners        = 3
	idsPerOwner   = 4  // created before the load
	maxPerOwner   = 30 // creates stop there, so a page of 100 holds every id
	minLive       = 8  // deletes stop below this many live ids
	warmUp        = time.Second
	afterRecovery = 2500 * time.Millisecond
	// convergeFor bounds the wait, after the load, for both instances to
	// serve exactly what Postgres holds, from Redis (no BYPASS).
	convergeFor = 30 * time.Second
)

// TestCacheConsistencyUnderRedisFaults drives two instances of the service
// (A takes most writes, B most reads) on one Postgres database and a
// private redis-server with 10 clients, and injects one fault per subtest
// while they run: none (the control), a 3 s SIGSTOP of Redis, kill -9 of
// Redis and a restart from its AOF, CLIENT KILL of every service
// connection, a restart of Redis with no data, and kill -9 of instance A
// while Redis is paused (A acknowledged writes whose cache updates
// failed), reading on through B.
//
// It fails on any stale read (see check: a read sent after a write was
// acknowledged must reflect it, on single reads, lists and user lists) and
// when, within convergeFor of the end of the load, the instances do not
// answer exactly what Postgres holds from Redis. It logs per scenario the
// stale reads, the time from Redis being back to the first X-Cache: HIT of
// each instance, and the read latency p50/p99 during the outage.
//
//	go test -race -run TestCacheConsistencyUnderRedisFaults -v ./cmd/api/faults/
//	go test -race -run 'TestCacheConsistencyUnderRedisFaults/pause' -v ./cmd/api/faults/
func TestCacheConsistencyUnderRedisFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("fault injection runs real processes for about a minute; skipped with -short")
	}
	buildBinary(t)
	scenarios := []struct {
		name  string
		fault func(r *run)
	}{
		{"control", func(r *run) { r.faultBegins(); time.Sleep(warmUp); r.redisBack() }},
		{"pause", func(r *run) {
			r.faultBegins()
			r.redis.pause()
			time.Sleep(3 * time.Second)
			r.redis.resume()
			r.redisBack()
		}},
		{"kill-restart-aof", func(r *run) {
			r.faultBegins()
			r.redis.kill()
			time.Sleep(time.Second)
			r.redis.start()
			r.redisBack()
		}},
		{"client-kill", func(r *run) {
			r.faultBegins()
			var killed int64
			for range 10 {
				killed += r.redis.killClients()
				time.Sleep(200 * time.Millisecond)
			}
			r.redisBack()
			r.notef("CLIENT KILL closed %d connections in 10 rounds", killed)
		}},
		{"restart-empty", func(r *run) {
			r.faultBegins()
			r.redis.kill()
			r.redis.wipe()
			time.Sleep(time.Second)
			r.redis.start()
			r.redisBack()
		}},
		{"kill-instance-during-pause", func(r *run) {
			r.faultBegins()
			r.redis.pause()
			time.Sleep(1500 * time.Millisecond)
			killedAt := time.Now()
			r.a.kill()
			time.Sleep(500 * time.Millisecond)
			r.redis.resume()
			r.redisBack()
			n := 0
			for _, o := range r.h.snapshot() {
				if o.inst == "A" && o.acked() && o.start.After(r.faultAt) && o.end.Before(killedAt) {
					n++
				}
			}
			r.notef("A acknowledged %d writes during the pause before its kill -9", n)
		}},
	}
	var summary []string
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			summary = append(summary, runScenario(t, sc.name, sc.fault))
		})
	}
	t.Logf("summary:\n%s", strings.Join(summary, "\n"))
}

// run is one scenario: its processes, its data and its history.
type run struct {
	t     *testing.T
	name  string
	redis *redisServer
	a, b  *instance
	h     history
	t0    time.Time
	owner []string
	pool  pool
	title atomic.Int64

	// faultAt is when the fault began, backAt when Redis answered again
	// (set by the scenario's fault function, in the test goroutine).
	faultAt, backAt time.Time
	// writesOnA routes every write to A while the fault lasts, so that B
	// has no failed cache write of its own and depends on A's
	// invalidations reaching it: the cross-instance path under test.
	writesOnA atomic.Bool
	notes     []string
}

func (r *run) faultBegins() {
	r.faultAt = time.Now()
	r.writesOnA.Store(true)
}

func (r *run) redisBack() {
	r.backAt = time.Now()
	r.writesOnA.Store(false)
}

func (r *run) notef(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// runScenario starts fresh processes and data, runs the load around fault,
// judges the history and returns a one-line summary.
func runScenario(t *testing.T, name string, fault func(r *run)) string {
	env := testenv.Get(t)
	r := &run{t: t, name: name, redis: startRedis(t), pool: pool{
		deleted: map[string]bool{}, version: map[string]int64{}, perOwner: map[string]int{},
	}}
	prefix := scratch.Name("fault:") + ":" // one cache for both instances
	vars := func() map[string]string {
		return map[string]string{
			"DATABASE_URL": env.DatabaseURL, "REDIS_URL": r.redis.url(), "CACHE_PREFIX": prefix,
			"ADMIN_TOKEN": adminToken, "CACHE_ENCRYPTION_KEY": encryptionKey, "LOG_LEVEL": "warn",
		}
	}
	r.a = startInstance(t, "A", vars())
	r.b = startInstance(t, "B", vars())
	r.t0 = time.Now()
	r.seed()

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait() // a fault that fails the test still ends the clients
	defer stop()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(ctx, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))))
		}()
	}
	time.Sleep(warmUp)
	fault(r)
	time.Sleep(afterRecovery)
	stop()
	wg.Wait()
	loadEnd := time.Now()

	mismatches, rounds := r.converge()
	return r.judge(loadEnd, mismatches, rounds)
}

// pool is what the clients know of the analyses: which exist, which were sent a DELETE, and the highest version seen of each.
type pool struct {
	mu       sync.Mutex
	ids      []string
	deleted  map[string]bool
	version  map[string]int64
	perOwner map[string]int
}

func (p *pool) add(id string, version int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = append(p.ids, id)
	p.version[id] = max(p.version[id], version)
}

func (p *pool) saw(id string, version int64) {
	p.mu.Lock()
	p.version[id] = max(p.version[id], version)
	p.mu.Unlock()
}

// pick returns a random id: any one when deleted is true, else one not
// sent a DELETE ("" when there is none).
func (p *pool) pick(rng *rand.Rand, deleted bool) (id string, version int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ids := p.ids
	if !deleted {
		ids = p.liveLocked()
	}
	if len(ids) == 0 {
		return "", 0
	}
	id = ids[rng.IntN(len(ids))]
	return id, p.version[id]
}

func (p *pool) liveLocked() []string {
	live := make([]string, 0, len(p.ids))
	for _, id := range p.ids {
		if !p.deleted[id] {
			live = append(live, id)
		}
	}
	return live
}

// claimCreate reserves a create for owner, false when it has maxPerOwner.
func (p *pool) claimCreate(owner string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.perOwner[owner] >= maxPerOwner {
		return false
	}
	p.perOwner[owner]++
	return true
}

// claimDelete marks a random live id as sent a DELETE, "" when fewer
// than minLive ids are live.
func (p *pool) claimDelete(rng *rand.Rand) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	live := p.liveLocked()
	if len(live) < minLive {
		return ""
	}
	id := live[rng.IntN(len(live))]
	p.deleted[id] = true
	return id
}

func (p *pool) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.ids)
}

// seed creates idsPerOwner analyses for each of the scenario's owners
// through A; they are acknowledged writes of the history like any other.
func (r *run) seed() {
	r.t.Helper()
	for range owners {
		r.owner = append(r.owner, uuid.NewString())
	}
	for _, owner := range r.owner {
		for range idsPerOwner {
			r.pool.claimCreate(owner)
			if o := r.create(r.a, owner); o.status != http.StatusCreated {
				r.t.Fatalf("seeding: %s", o.describe(r.t0))
			}
		}
	}
}

// client runs random operations until ctx ends: writes mostly through A,
// reads mostly through B.
func (r *run) client(ctx context.Context, rng *rand.Rand) {
	for ctx.Err() == nil {
		p := rng.IntN(100)
		write := p >= 65
		in := r.pickInstance(rng, write)
		if in == nil {
			return
		}
		owner := r.owner[rng.IntN(len(r.owner))]
		switch {
		case p < 35:
			if id, _ := r.pool.pick(rng, rng.IntN(100) < 15); id != "" {
				r.get(in, id, false)
			}
		case p < 50:
			r.list(in, opList, owner, false)
		case p < 65:
			r.list(in, opUserList, owner, false)
		case p < 96:
			if id, version := r.pool.pick(rng, false); id != "" {
				ifMatch := int64(0)
				if rng.IntN(3) == 0 {
					ifMatch = version
				}
				r.patch(in, id, ifMatch)
			}
		case p < 99:
			if r.pool.claimCreate(owner) {
				r.create(in, owner)
			}
		default:
			if id := r.pool.claimDelete(rng); id != "" {
				r.delete(in, id)
			}
		}
		time.Sleep(3 * time.Millisecond)
	}
}

// pickInstance returns A for 80% of writes (all of them during the fault)
// and B for 80% of reads, the other one when that one is dead, nil when
// both are.
func (r *run) pickInstance(rng *rand.Rand, write bool) *instance {
	first, second := r.b, r.a
	if write {
		first, second = r.a, r.b
	}
	if rng.IntN(5) == 0 && !(write && r.writesOnA.Load()) {
		first, second = second, first
	}
	switch {
	case first.alive():
		return first
	case second.alive():
		return second
	}
	return nil
}

// do sends one request for o on in and fills o's instance, times, status
// and X-Cache; it returns the body of an answer.
func (r *run) do(in *instance, o *op, method, path, body string) []byte {
	o.inst = in.name
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.base+path, rd)
	if err != nil {
		panic(err) // a malformed URL is a bug of this file
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if o.ifMatch != 0 {
		req.Header.Set("If-Match", fmt.Sprintf(`"%d"`, o.ifMatch))
	}
	o.start = time.Now()
	resp, err := in.client.Do(req)
	var b []byte
	if err == nil {
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	o.end = time.Now()
	if err != nil {
		o.err = err.Error()
		return nil
	}
	o.status, o.xcache = resp.StatusCode, resp.Header.Get("X-Cache")
	return b
}

type analysisBody struct {
	ID      string `json:"id"`
	OwnerID string `json:"owner_id"`
	Version int64  `json:"version"`
}

// decodeAnalysis fills o's id (when unset) and version from a 200 or 201
// body; an undecodable body turns o into "no answer".
func decodeAnalysis(o *op, b []byte) {
	if o.status != http.StatusOK && o.status != http.StatusCreated {
		return
	}
	var a analysisBody
	if err := json.Unmarshal(b, &a); err != nil || a.Version < 1 {
		o.err, o.status = fmt.Sprintf("undecodable %d body %q: %v", o.status, b, err), 0
		return
	}
	if o.id == "" {
		o.id = a.ID
	}
	o.version = a.Version
}

func (r *run) create(in *instance, owner string) *op {
	o := &op{kind: opCreate, owner: owner}
	b := r.do(in, o, http.MethodPost, "/api/v1/analyses",
		fmt.Sprintf(`{"owner_id":%q,"url":"https://example.com/fault","title":"created","tags":["fault"],"notes":"secret"}`, owner))
	decodeAnalysis(o, b)
	r.h.add(o)
	if o.acked() {
		r.pool.add(o.id, o.version)
	}
	return o
}

func (r *run) patch(in *instance, id string, ifMatch int64) {
	o := &op{kind: opPatch, id: id, ifMatch: ifMatch}
	b := r.do(in, o, http.MethodPatch, "/api/v1/analyses/"+id, fmt.Sprintf(`{"title":"patch %d"}`, r.title.Add(1)))
	decodeAnalysis(o, b)
	r.h.add(o)
	if o.acked() {
		r.pool.saw(id, o.version)
	}
}

func (r *run) delete(in *instance, id string) {
	o := &op{kind: opDelete, id: id}
	r.do(in, o, http.MethodDelete, "/api/v1/analyses/"+id, "")
	r.h.add(o)
}

func (r *run) get(in *instance, id string, final bool) *op {
	o := &op{kind: opGet, id: id, final: final}
	b := r.do(in, o, http.MethodGet, "/api/v1/analyses/"+id, "")
	decodeAnalysis(o, b)
	r.h.add(o)
	if o.status == http.StatusOK {
		r.pool.saw(id, o.version)
	}
	return o
}

func (r *run) list(in *instance, k kind, owner string, final bool) *op {
	o := &op{kind: k, owner: owner, final: final}
	path := "/api/v1/analyses?limit=100&owner_id=" + owner
	if k == opUserList {
		path = "/api/v1/users/" + owner + "/analyses?limit=100"
	}
	b := r.do(in, o, http.MethodGet, path, "")
	if o.status == http.StatusOK {
		var page struct {
			Data  []analysisBody `json:"data"`
			Count int            `json:"count"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			o.err, o.status = fmt.Sprintf("undecodable page %q: %v", b, err), 0
		} else {
			o.items, o.count = make(map[string]int64, len(page.Data)), page.Count
			for _, a := range page.Data {
				o.items[a.ID] = a.Version
			}
		}
	}
	r.h.add(o)
	return o
}

// postgres returns the rows of the scenario's owners: id → version, and
// owner → its ids.
func (r *run) postgres() (versions map[string]int64, byOwner map[string][]string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	conn, err := pgx.Connect(ctx, testenv.Get(r.t).DatabaseURL)
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT id::text, owner_id::text, version FROM analyses WHERE owner_id::text = ANY($1::text[])`, r.owner)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	versions, byOwner = map[string]int64{}, map[string][]string{}
	for rows.Next() {
		var id, owner string
		var v int64
		if err := rows.Scan(&id, &owner, &v); err != nil {
			r.t.Fatal(err)
		}
		versions[id] = v
		byOwner[owner] = append(byOwner[owner], id)
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return versions, byOwner
}

// converge reads every id, list and user list of the scenario from every
// live instance until all of them answer exactly what Postgres holds and
// none bypasses Redis, for at most convergeFor. It returns what still
// differed at the end (nil once converged) and the number of rounds.
func (r *run) converge() (mismatches []string, rounds int) {
	deadline := time.Now().Add(convergeFor)
	for {
		rounds++
		mismatches = r.compare()
		if len(mismatches) == 0 || time.Now().After(deadline) {
			return mismatches, rounds
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (r *run) compare() []string {
	versions, byOwner := r.postgres()
	ids := r.pool.all()
	for id := range versions {
		if !slices.Contains(ids, id) {
			ids = append(ids, id) // created by a request whose answer was lost
		}
	}
	var out []string
	for _, in := range []*instance{r.a, r.b} {
		if !in.alive() {
			continue
		}
		for _, id := range ids {
			o := r.get(in, id, true)
			want, exists := versions[id]
			switch {
			case o.xcache == "BYPASS":
				out = append(out, fmt.Sprintf("%s still bypasses Redis", o.describe(r.t0)))
			case exists && (o.status != http.StatusOK || o.version != want):
				out = append(out, fmt.Sprintf("%s, Postgres has v%d", o.describe(r.t0), want))
			case !exists && o.status != http.StatusNotFound:
				out = append(out, fmt.Sprintf("%s, Postgres has no such row", o.describe(r.t0)))
			}
		}
		for _, owner := range r.owner {
			for _, k := range []kind{opList, opUserList} {
				o := r.list(in, k, owner, true)
				if o.xcache == "BYPASS" {
					out = append(out, fmt.Sprintf("%s still bypasses Redis", o.describe(r.t0)))
					continue
				}
				want := make(map[string]int64, len(byOwner[owner]))
				for _, id := range byOwner[owner] {
					want[id] = versions[id]
				}
				if o.status != http.StatusOK || o.count != len(want) || !mapsEqual(o.items, want) {
					out = append(out, fmt.Sprintf("%s lists %s, Postgres has %s", o.describe(r.t0), render(o.items), render(want)))
				}
			}
		}
	}
	return out
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func render(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for id, v := range m {
		parts = append(parts, fmt.Sprintf("%s:v%d", id[:8], v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, " ") + "}"
}

// judge checks the history, logs the scenario's measurements, fails the
// test on any stale read or final mismatch, and returns a summary line.
func (r *run) judge(loadEnd time.Time, mismatches []string, rounds int) string {
	t := r.t
	ops := r.h.snapshot()
	violations := check(ops)

	var reads, writes, noAnswer, server5xx int
	errs := map[string]int{}
	for _, o := range ops {
		if o.final {
			continue
		}
		if o.kind.isRead() {
			reads++
		} else {
			writes++
		}
		switch {
		case o.status == 0:
			noAnswer++
			errs[o.err]++
		case o.status >= 500:
			server5xx++
		}
	}
	// Stale reads of the final check are counted once per instance and
	// target: the check polls the same reads until they converge.
	var loadStale, finalStale int
	var maxAge, lastAfterBack time.Duration // staleness; last stale read after Redis was back
	var shown []violation
	finalSeen := map[string]bool{}
	byKind, byCache := map[string]int{}, map[string]int{}
	for _, v := range violations {
		if v.read.final {
			target := v.read.inst + v.read.kind.String() + v.read.id + v.read.owner
			if finalSeen[target] {
				continue
			}
			finalSeen[target] = true
			finalStale++
		} else {
			loadStale++
			maxAge = max(maxAge, v.read.start.Sub(v.write.end))
			lastAfterBack = max(lastAfterBack, v.read.start.Sub(r.backAt))
		}
		shown = append(shown, v)
		byKind[v.read.kind.String()]++
		byCache[v.read.xcache]++
	}
	t.Logf("%s: %d ops during the load (%d reads, %d writes; %d without an answer, %d 5xx); %d stale reads during the load (max staleness %v, the last one sent %v after Redis was back), %d distinct in the final check; by read %v, by X-Cache %v",
		r.name, reads+writes, reads, writes, noAnswer, server5xx, loadStale, maxAge.Round(time.Millisecond), lastAfterBack.Round(time.Millisecond), finalStale, byKind, byCache)
	if len(errs) > 0 {
		t.Logf("%s: requests without an answer: %v", r.name, errs)
	}
	for _, n := range r.notes {
		t.Logf("%s: %s", r.name, n)
	}

	// Time from Redis being back to each instance's first HIT.
	firstHit := map[string]string{}
	for _, in := range []*instance{r.a, r.b} {
		firstHit[in.name] = "none"
		var best time.Duration = -1
		for _, o := range ops {
			if o.inst == in.name && o.kind.isRead() && o.xcache == "HIT" && !o.start.Before(r.backAt) {
				if d := o.end.Sub(r.backAt); best < 0 || d < best {
					best = d
				}
			}
		}
		if best >= 0 {
			firstHit[in.name] = best.Round(time.Millisecond).String()
		}
	}
	t.Logf("%s: Redis back at %+.3fs; first X-Cache: HIT after that: A %s, B %s", r.name, r.backAt.Sub(r.t0).Seconds(), firstHit["A"], firstHit["B"])

	// Read latency while Redis was out.
	outage := r.backAt.Sub(r.faultAt)
	var latency []string
	for _, name := range []string{"A", "B"} {
		var ds []time.Duration
		caches := map[string]int{}
		for _, o := range ops {
			if o.inst == name && o.kind.isRead() && !o.final && !o.start.Before(r.faultAt) && o.start.Before(r.backAt) {
				ds = append(ds, o.end.Sub(o.start))
				caches[o.xcache]++
			}
		}
		latency = append(latency, fmt.Sprintf("%s n=%d p50=%v p99=%v X-Cache %v", name, len(ds), quantile(ds, 0.50), quantile(ds, 0.99), caches))
	}
	t.Logf("%s: reads sent during the %v fault window: %s", r.name, outage.Round(time.Millisecond), strings.Join(latency, "; "))
	t.Logf("%s: final check: %d mismatches after %d rounds (%v after the load)", r.name, len(mismatches), rounds, time.Since(loadEnd).Round(100*time.Millisecond))

	if len(shown) > 0 {
		lines := make([]string, 0, 13)
		for i, v := range shown {
			if i == 12 {
				lines = append(lines, fmt.Sprintf("... and %d more", len(shown)-i))
				break
			}
			lines = append(lines, v.describe(r.t0))
		}
		t.Errorf("%s: %d stale reads during the load, %d in the final check (distinct reads):\n%s", r.name, loadStale, finalStale, strings.Join(lines, "\n"))
	}
	if len(mismatches) > 0 {
		shown := mismatches[:min(len(mismatches), 12)]
		t.Errorf("%s: %d reads still differ from Postgres %v after the load:\n%s", r.name, len(mismatches), convergeFor, strings.Join(shown, "\n"))
	}
	return fmt.Sprintf("%-28s ops=%5d stale(load)=%4d stale(final)=%4d maxStaleness=%-8v lastStaleAfterBack=%-8v firstHIT A=%-8s B=%-8s mismatches=%d faultReads %s",
		r.name, reads+writes, loadStale, finalStale, maxAge.Round(time.Millisecond), lastAfterBack.Round(time.Millisecond),
		firstHit["A"], firstHit["B"], len(mismatches), strings.Join(latency, "; "))
}

// quantile returns the q-quantile of ds (nearest rank), 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))].Round(100 * time.Microsecond)
}
