package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Row names that other rows compare themselves with.
const (
	rowCachedGet   = "GET /analyses/{id}, cached (HIT)"
	rowCeilStatic  = "ceiling: gin, same body from memory"
	rowCeilRedis   = "ceiling: gin + one go-redis GET"
	rowCeilRedisBM = "ceiling: redis-benchmark GET"
	rowBulk        = "POST /analyses/bulk, 1000 items (write-behind)"
	rowCeilCopy    = "ceiling: raw pgx CopyFrom"
	rowPatch       = "PATCH /analyses/{id} (write-through)"
	rowPost        = "POST /analyses, one per request (write-through)"
	rowCeilWrite   = "ceiling: gin + pgx UPDATE … RETURNING + Redis SET"
)

// runAll runs every scenario in an order where none disturbs the next:
// reads first, writes (which invalidate lists) after.
func (b *bench) runAll(ctx context.Context) (*report, error) {
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"cached GET and its ceilings", b.cachedGet},
		{"redis-benchmark", b.redisBenchmark},
		{"uncached GET", b.uncachedGet},
		{"list", b.list},
		{"stats", b.stats},
		{"stats stampede", b.stampede},
		{"PATCH, POST one by one and their ceiling", b.writes},
		{"bulk ingest and flush", b.bulkAndFlush},
	}
	for _, s := range steps {
		slog.Info("scenario", "name", s.name)
		if err := s.run(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return b.rep, nil
}

// addLoad records a wrk result as a row; perRequest scales requests to the
// unit (1000 items per bulk request).
func (b *bench) addLoad(name, unit string, r wrkResult, perRequest float64, vs, note string) *row {
	if f := r.failures(); f != "" {
		note = joinNote(note, "failed: "+f)
	}
	return b.rep.add(row{Name: name, Rate: r.rate() * perRequest, Unit: unit, P50: r.p50(), P99: r.p99(), Vs: vs, Note: note})
}

func (b *bench) hotIDs() []string { return idPaths("", b.ids[:b.p.HotIDs]) }

// cachedGetRounds is how many turns the cached GET and its ceilings take.
const cachedGetRounds = 3

// cachedGet measures GET of an analysis served from Redis, then the two gin
// ceilings with the same body and the same Redis entry.
func (b *bench) cachedGet(ctx context.Context) error {
	ids := b.hotIDs()
	paths := prefixed("/api/v1/analyses/", ids)
	if err := b.client.getAll(ctx, paths, 16); err != nil {
		return fmt.Errorf("fill the cache: %w", err)
	}
	sample, err := b.client.expect(ctx, http.MethodGet, paths[0], nil, http.StatusOK, nil)
	if err != nil {
		return err
	}
	if sample.xcache != "HIT" {
		return fmt.Errorf("GET %s after a fill answered X-Cache %q, want HIT", paths[0], sample.xcache)
	}
	bodyFile := filepath.Join(b.dir, "body.json")
	if err := os.WriteFile(bodyFile, sample.body, 0o644); err != nil {
		return fmt.Errorf("write sample body: %w", err)
	}
	if err := b.startCeiling(ctx, bodyFile); err != nil {
		return err
	}
	ceil, ceilBase := b.ceil, b.ceilBase
	loads := make([]load, 3)
	for i, route := range []string{"/api/v1/analyses/", "/static/", "/redis/"} {
		file, err := b.writeLines(fmt.Sprintf("get-%d.txt", i), prefixed(route, ids))
		if err != nil {
			return err
		}
		base := ceilBase
		if i == 0 {
			base = b.client.base
		}
		loads[i] = load{base: base, script: "get_counted.lua", args: []string{file}, conns: b.p.conns}
	}
	// The server and the ceilings take turns, so a burst of background
	// load on the machine does not land on one side of the comparison.
	rs, err := interleave(ctx, b.p, cachedGetRounds, loads...)
	if err != nil {
		return err
	}
	hit := b.addLoad(rowCachedGet, "req/s", rs[0], 1, rowCeilRedis, xcacheNote(rs[0]))
	for i, name := range []string{rowCeilStatic, rowCeilRedis} {
		if f := rs[i+1].failures(); f != "" {
			return fmt.Errorf("%s: %s (log: %s)", name, f, ceil.log)
		}
		b.addLoad(name, "req/s", rs[i+1], 1, "", fmt.Sprintf("%d-byte body", len(sample.body)))
	}

	ceilRedis := b.rep.find(rowCeilRedis)
	hit.Target = "≥ 0.9× rate, p99 ≤ 2× ceiling p99"
	hit.Met = hit.Rate >= 0.9*ceilRedis.Rate && hit.P99 <= 2*ceilRedis.P99
	hit.HasTarget = true
	hit.Note = joinNote(hit.Note, fmt.Sprintf("%.2f× the static ceiling; p99 %.2f× the ceiling's", hit.Rate/b.rep.find(rowCeilStatic).Rate, float64(hit.P99)/float64(ceilRedis.P99)))
	if !hit.Met || b.o.profile {
		return b.profileCachedGet(ctx, loads[0])
	}
	return nil
}

// startCeiling builds and starts cmd/ceiling pinned to the server's CPU,
// on the bench database and prefix; it runs until close.
func (b *bench) startCeiling(ctx context.Context, bodyFile string) error {
	bin := filepath.Join(b.dir, "ceiling")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/ceiling")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build cmd/ceiling: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, err := startProcess("ceiling", b.dir, pinned(context.Background(), 0, bin,
		"-addr", addr, "-body", bodyFile, "-redis-url", b.o.redisURL, "-prefix", b.prefix,
		"-database-url", b.db.url, "-pg-conns", fmt.Sprint(servicePoolSize)), "GIN_MODE=release")
	if err != nil {
		return err
	}
	if err := p.waitReady(ctx, "http://"+addr+"/health", 10*time.Second); err != nil {
		p.stop()
		return err
	}
	b.ceil, b.ceilBase = p, "http://"+addr
	return nil
}

// uncachedGet reads ids nobody has read yet, in order, so each request is
// a miss that goes to Postgres (and then fills the cache). The warm-up
// uses ids of its own; the X-Cache count shows the share really missed.
func (b *bench) uncachedGet(ctx context.Context) error {
	cold := b.ids[b.p.HotIDs:]
	split := len(cold) / 4
	warmFile, err := b.writeLines("cold-warm.txt", prefixed("/api/v1/analyses/", idPaths("", cold[:split])))
	if err != nil {
		return err
	}
	runFile, err := b.writeLines("cold-run.txt", prefixed("/api/v1/analyses/", idPaths("", cold[split:])))
	if err != nil {
		return err
	}
	warm := load{base: b.client.base, script: "get_counted.lua", args: []string{warmFile, "seq"}, conns: b.p.conns}
	run := warm
	run.args = []string{runFile, "seq"}
	r, err := warmAndRun(ctx, b.p, warm, run)
	if err != nil {
		return err
	}
	b.addLoad("GET /analyses/{id}, uncached (MISS → Postgres)", "req/s", r, 1, rowCeilStatic, xcacheNote(r))
	return nil
}

// list reads cached list pages: a mix of filters and pages, all filled
// before the run.
func (b *bench) list(ctx context.Context) error {
	owner := b.gen.owners[0].String()
	paths := []string{
		"/api/v1/analyses", "/api/v1/analyses?limit=100", "/api/v1/analyses?skip=20&limit=20",
		"/api/v1/analyses?skip=40&limit=20", "/api/v1/analyses?status=completed",
		"/api/v1/analyses?status=failed&limit=50", "/api/v1/analyses?tag=t7",
		"/api/v1/analyses?tag=bench&limit=10", "/api/v1/analyses?owner_id=" + owner,
		"/api/v1/analyses?owner_id=" + owner + "&status=pending",
	}
	if err := b.client.getAll(ctx, paths, 4); err != nil {
		return fmt.Errorf("fill list pages: %w", err)
	}
	file, err := b.writeLines("lists.txt", paths)
	if err != nil {
		return err
	}
	l := load{base: b.client.base, script: "get_counted.lua", args: []string{file}, conns: b.p.conns}
	r, err := warmAndRun(ctx, b.p, l, l)
	if err != nil {
		return err
	}
	b.addLoad("GET /analyses?… list pages, cached (HIT)", "req/s", r, 1, rowCeilStatic, xcacheNote(r))
	return nil
}

const statsPath = "/api/v1/analyses/stats"

// stats reads the stats once computed (warm).
func (b *bench) stats(ctx context.Context) error {
	if _, err := b.client.expect(ctx, http.MethodGet, statsPath, nil, http.StatusOK, nil); err != nil {
		return err
	}
	file, err := b.writeLines("stats.txt", []string{statsPath})
	if err != nil {
		return err
	}
	l := load{base: b.client.base, script: "get_counted.lua", args: []string{file}, conns: b.p.conns}
	r, err := warmAndRun(ctx, b.p, l, l)
	if err != nil {
		return err
	}
	b.addLoad(fmt.Sprintf("GET /analyses/stats, warm (%s rows)", humanCount(b.p.StatsRows)), "req/s", r, 1, rowCeilStatic, xcacheNote(r))
	return nil
}

// stampede measures one cold stats computation alone, then sends
// p.Stampede cold requests at once: the guard must run one computation and
// make the others wait about that long, not longer.
func (b *bench) stampede(ctx context.Context) error {
	var alone []time.Duration
	for range 3 {
		if err := b.client.invalidateKeys(ctx, "stats:analyses"); err != nil {
			return err
		}
		r, err := b.client.expect(ctx, http.MethodGet, statsPath, nil, http.StatusOK, nil)
		if err != nil {
			return err
		}
		if r.xcache != "MISS" {
			return fmt.Errorf("stats after invalidation answered X-Cache %q, want MISS: the invalidation did not reach the stats entry", r.xcache)
		}
		alone = append(alone, r.latency)
	}
	slices.Sort(alone)
	compute := alone[1]

	if err := b.client.invalidateKeys(ctx, "stats:analyses"); err != nil {
		return err
	}
	before, err := b.client.cacheStats(ctx)
	if err != nil {
		return err
	}
	n := b.p.Stampede
	// Each request gets its own connection, dialled before the start, so
	// the burst is not serialised behind a few connections.
	clients := make([]*apiClient, n)
	for i := range clients {
		clients[i] = &apiClient{base: b.client.base, http: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{}}}
		if _, err := clients[i].expect(ctx, http.MethodGet, "/health", nil, http.StatusOK, nil); err != nil {
			return err
		}
	}
	start := make(chan struct{})
	results := make([]response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = clients[i].expect(ctx, http.MethodGet, statsPath, nil, http.StatusOK, nil)
		})
	}
	close(start)
	wg.Wait()
	for _, c := range clients {
		c.http.CloseIdleConnections()
	}
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("stampede request: %w", err)
		}
	}
	after, err := b.client.cacheStats(ctx)
	if err != nil {
		return err
	}
	lat := make([]time.Duration, n)
	counts := map[string]int64{}
	for i, r := range results {
		lat[i] = r.latency
		counts[r.xcache]++
	}
	slices.Sort(lat)
	computations := after.Stampede.Computations - before.Stampede.Computations
	p99 := lat[(len(lat)*99+99)/100-1]
	// The waiters' target is the computation they actually waited for, as
	// long as it took under this load: δ, stored with the value.
	delta, err := b.storedDelta(ctx, "stats:analyses")
	if err != nil {
		return err
	}
	const slack = 20 * time.Millisecond
	r := b.rep.add(row{
		Name: fmt.Sprintf("GET /analyses/stats, %d cold at once", n), Unit: "",
		P50: lat[len(lat)/2], P99: p99,
		Target: "1 computation; p99 ≤ δ + 20 ms", HasTarget: true, Met: computations == 1 && p99 <= delta+slack,
		Note: fmt.Sprintf("%d computation(s), %d coalesced, %d lock timeouts; the computation they waited for took δ = %s (stored with the value), p99 − δ = %s, fastest answer − δ = %s (time before the computation started, which every waiter shares); one cold request alone takes %s end to end; %s",
			computations, after.Stampede.Coalesced-before.Stampede.Coalesced, after.Stampede.LockTimeouts-before.Stampede.LockTimeouts,
			ms(delta), ms(p99-delta), ms(lat[0]-delta), ms(compute), countsNote(counts)),
	})
	r.Ratio, r.RatioOf = float64(p99)/float64(delta), "p99 / δ of the computation"
	return nil
}

// storedDelta reads δ, the duration of the computation behind a
// StampedeGuard entry, from the entry itself:
// 0x01 'S' {computed_at µs}:{δ µs}:{soft expiry µs}:{body} (cache/stampede_entry.go).
func (b *bench) storedDelta(ctx context.Context, logical string) (time.Duration, error) {
	raw, err := b.rdb.Get(ctx, b.prefix+logical).Bytes()
	if err != nil {
		return 0, fmt.Errorf("read the %s entry: %w", logical, err)
	}
	if len(raw) < 2 || raw[0] != 1 || raw[1] != 'S' {
		return 0, fmt.Errorf("the %s entry is not a stampede entry", logical)
	}
	fields := strings.SplitN(string(raw[2:]), ":", 4)
	if len(fields) < 4 {
		return 0, fmt.Errorf("the %s entry has no δ", logical)
	}
	us, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("the %s entry's δ %q: %w", logical, fields[1], err)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// servicePoolSize is the service's Postgres pool (repository.DefaultOptions),
// given to the write ceiling's pgx pool too.
const servicePoolSize = 20

// writeRounds is how many turns PATCH, POST and their ceiling take.
const writeRounds = 3

// outboxPoll is how often the writes scenario counts cache_outbox rows.
const outboxPoll = 100 * time.Millisecond

// writes measures PATCH of random hot analyses and POST of new ones, both
// written through (one statement for the row and its invalidation-log
// entry, then the cache write), next to the write ceiling: cmd/ceiling
// PATCH /write/:id, one UPDATE … RETURNING plus one Redis SET, with the
// same bodies on the same ids. The three take turns like the cached GET
// and its ceilings. Meanwhile the size of the invalidation log is polled.
func (b *bench) writes(ctx context.Context) error {
	ids := b.hotIDs()
	patchFile, err := b.writeLines("patch.txt", prefixed("/api/v1/analyses/", ids))
	if err != nil {
		return err
	}
	ceilFile, err := b.writeLines("write.txt", prefixed("/write/", ids))
	if err != nil {
		return err
	}
	loads := []load{
		{base: b.ceilBase, script: "patch.lua", args: []string{ceilFile}, conns: b.p.conns},
		{base: b.client.base, script: "patch.lua", args: []string{patchFile}, conns: b.p.conns},
		{base: b.client.base, script: "post.lua", args: []string{b.gen.owners[1].String()}, conns: b.p.conns},
	}
	labels := []string{rowCeilWrite, rowPatch, rowPost}
	watch, err := watchOutbox(ctx, b.db.url, outboxPoll)
	if err != nil {
		return err
	}
	// PATCH and POST run back to back in each round, so the log holds the
	// rows of both for up to OUTBOX_RETENTION.
	rs, err := interleaveTurns(ctx, b.p, writeRounds, func(i int) { watch.turn(labels[i]) }, loads...)
	watchErr := watch.stop()
	if err != nil {
		return err
	}
	if watchErr != nil {
		return watchErr
	}
	if f := rs[0].failures(); f != "" {
		return fmt.Errorf("%s: %s (log: %s)", rowCeilWrite, f, b.ceil.log)
	}
	peak, byLabel, samples := watch.peaks()

	patch := b.addLoad(rowPatch, "req/s", rs[1], 1, rowCeilWrite, joinNote(answerSize(rs[1]), outboxNote(byLabel[rowPatch])))
	post := b.addLoad(rowPost, "items/s", rs[2], 1, rowCeilWrite, joinNote(answerSize(rs[2]), outboxNote(byLabel[rowPost])))
	ceil := b.addLoad(rowCeilWrite, "req/s", rs[0], 1, "", joinNote(
		fmt.Sprintf("PATCH /write/:id of cmd/ceiling: the same bodies on the same ids, one UPDATE … RETURNING in autocommit (pgx pool of %d), one SET of the row as JSON", servicePoolSize),
		answerSize(rs[0])))
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf(
		"Invalidation log (cache_outbox) under the write load: peak %s rows, of which at most %s not yet applied "+
			"(%d samples, one every %s, through the PATCH, POST and ceiling turns; applied rows are purged after OUTBOX_RETENTION, 10 s by default).",
		thousands(float64(peak.Rows)), thousands(float64(peak.Pending)), samples, outboxPoll))

	for _, x := range []*row{patch, post} {
		x.Target, x.HasTarget = "≥ 0.6× write ceiling", true
		x.Met = ceil.Rate > 0 && x.Rate >= 0.6*ceil.Rate
	}
	if !patch.Met || b.o.profile {
		if err := b.profile(ctx, "PATCH", "cpu-patch.prof", loads[1]); err != nil {
			return err
		}
	}
	if !post.Met || b.o.profile {
		if err := b.profile(ctx, "POST", "cpu-post.prof", loads[2]); err != nil {
			return err
		}
	}
	return nil
}

// answerSize is the mean bytes read per answer, headers included.
func answerSize(r wrkResult) string {
	if r.Requests == 0 {
		return ""
	}
	return fmt.Sprintf("%d bytes per answer with headers", r.Bytes/r.Requests)
}

// outboxNote is the peak size of the invalidation log during a load's turns.
func outboxNote(s outboxSize) string {
	return fmt.Sprintf("cache_outbox peak during its turns: %s rows, %s pending", thousands(float64(s.Rows)), thousands(float64(s.Pending)))
}

// bulkAndFlush ingests 1000-item bodies (write-behind), then times how
// fast the flushers commit what the run left pending, next to a raw
// CopyFrom of as many rows. Its run is shorter than the others'
// (p.BulkDuration): every accepted item waits in Redis until it is flushed.
func (b *bench) bulkAndFlush(ctx context.Context) error {
	l := load{base: b.client.base, script: "bulk.lua",
		args: []string{b.gen.owners[2].String(), fmt.Sprint(b.p.BulkItems)}, conns: b.p.BulkConns}
	if _, err := runWrk(ctx, l, b.p.Warmup); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	// Start the measured run with nothing pending.
	if _, _, _, err := b.drainWriteBehind(ctx); err != nil {
		return err
	}
	r, err := runWrk(ctx, l, b.p.BulkDuration)
	if err != nil {
		return err
	}
	bulk := b.addLoad(rowBulk, "items/s", r, float64(b.p.BulkItems), rowCeilCopy, "accepted (202) into the Redis stream")
	if one := b.rep.find(rowPost); one.Rate > 0 {
		bulk.Note = joinNote(bulk.Note, fmt.Sprintf("%.1f× the items/s of POST one per request", bulk.Rate/one.Rate))
	}

	committed, took, pending, err := b.drainWriteBehind(ctx)
	if err != nil {
		return err
	}
	flush := b.rep.add(row{Name: "write-behind flush (rows committed)", Unit: "rows/s",
		Rate: float64(committed) / took.Seconds(), Vs: rowCeilCopy, Target: "≥ 0.5× raw CopyFrom", HasTarget: true,
		Note: fmt.Sprintf("%d rows committed in %s from %d pending when ingest stopped (WRITE_BEHIND_BATCH_SIZE=%d)",
			committed, ms(took), pending, flushBatchSize)})

	// The rate of a CopyFrom is flat beyond ~100k rows; more only takes longer.
	rows := min(max(int(committed), 10_000), 100_000)
	_, copyTook, err := b.db.copyRows(ctx, b.gen, rows, "")
	if err != nil {
		return err
	}
	ceil := b.rep.add(row{Name: rowCeilCopy, Unit: "rows/s", Rate: float64(rows) / copyTook.Seconds(),
		Note: fmt.Sprintf("%d rows in one CopyFrom into the same table, same indexes, in %s", rows, ms(copyTook))})
	flush.Met = flush.Rate >= 0.5*ceil.Rate
	return nil
}

// drainWriteBehind calls the admin flush until nothing is pending and
// returns the rows Postgres gained meanwhile, how long that took, and
// what was pending at the start. The service's background flusher works
// at the same time; both count, as both are the write-behind committing.
func (b *bench) drainWriteBehind(ctx context.Context) (committed int64, took time.Duration, pending int64, err error) {
	before, err := b.db.count(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	stats, err := b.client.cacheStats(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	pending = stats.WriteBehind.Pending
	start := time.Now()
	for left := pending; left > 0; {
		if _, err := b.client.expect(ctx, http.MethodPost, "/api/v1/cache/write-behind/flush", nil, http.StatusOK, nil); err != nil {
			return 0, 0, 0, err
		}
		if stats, err = b.client.cacheStats(ctx); err != nil {
			return 0, 0, 0, err
		}
		left = stats.WriteBehind.Pending
		if time.Since(start) > 5*time.Minute {
			return 0, 0, 0, fmt.Errorf("write-behind still has %d pending after 5 minutes of flushing", left)
		}
	}
	took = time.Since(start)
	after, err := b.db.count(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	return after - before, took, pending, nil
}

func prefixed(prefix string, items []string) []string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = prefix + s
	}
	return out
}

// xcacheNote summarises the X-Cache answers counted during a run.
func xcacheNote(r wrkResult) string { return countsNote(r.XCache) }

func countsNote(counts map[string]int64) string {
	var total int64
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return ""
	}
	note := "X-Cache"
	for _, k := range []string{"HIT", "MISS", "STALE", "BYPASS", ""} {
		if n := counts[k]; n > 0 {
			name := k
			if k == "" {
				name = "none"
			}
			note += fmt.Sprintf(" %s %.1f%%", name, 100*float64(n)/float64(total))
		}
	}
	return note
}

func joinNote(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func humanCount(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
