package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
)

// asideFixture is an Aside on the shared Redis under this package's prefix.
type asideFixture struct {
	aside   *Aside
	rdb     *redis.Client
	codec   *Codec
	metrics *Metrics
	gate    *Gate
	keys    Keys
}

func newAsideFixture(t *testing.T, opt AsideOptions) *asideFixture {
	t.Helper()
	env := testenv.Get(t)
	ropt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	t.Cleanup(func() { rdb.Close() })
	return newAsideOn(t, rdb, Keys{Prefix: env.RedisPrefix + "aside:"}, opt)
}

func newAsideOn(t *testing.T, rdb *redis.Client, keys Keys, opt AsideOptions) *asideFixture {
	t.Helper()
	if opt.LeaseTTL == 0 {
		// A lease lapsing mid-fill on a loaded machine would drop the fill
		// that most tests expect; tests of the lease set it themselves.
		opt.LeaseTTL = time.Minute
	}
	f := &asideFixture{rdb: rdb, codec: mustCodec(t), metrics: NewMetrics(nil, nil), gate: &Gate{}, keys: keys}
	f.aside = NewAside(Backend{Redis: rdb, Keys: keys, Codec: f.codec, Metrics: f.metrics, Gate: f.gate, Logger: quietLog}, testResource, opt)
	return f
}

// entry returns the decoded entry under key, failing when there is none.
func (f *asideFixture) entry(t *testing.T, key string) Entry {
	t.Helper()
	raw, err := f.rdb.Get(context.Background(), key).Bytes()
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	e, err := f.codec.Decode(raw)
	if err != nil {
		t.Fatalf("decode %s: %v", key, err)
	}
	return e
}

// loader counts calls and returns a fixed answer.
type loader struct {
	calls   atomic.Int32
	body    []byte
	version int64
	err     error
}

func (l *loader) load(context.Context) ([]byte, int64, error) {
	l.calls.Add(1)
	return l.body, l.version, l.err
}

func TestAsideMissThenHit(t *testing.T) {
	f := newAsideFixture(t, AsideOptions{})
	ctx := context.Background()
	id := uuid.NewString()
	l := &loader{body: []byte(`{"v":1}`), version: 1}

	res, err := f.aside.Get(ctx, id, l.load)
	if err != nil || res.Status != Miss || res.Version != 1 || string(res.Body) != `{"v":1}` || res.Pattern != PatternAside {
		t.Fatalf("first read: %+v, %v", res, err)
	}
	if e := f.entry(t, f.keys.Prefix+"analysis:"+id); e.Kind != KindValue || e.Version != 1 {
		t.Fatalf("entry under analysis:{id}: %+v", e)
	}
	res, err = f.aside.Get(ctx, id, l.load)
	if err != nil || res.Status != Hit || res.Version != 1 || string(res.Body) != `{"v":1}` {
		t.Fatalf("second read: %+v, %v", res, err)
	}
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("loaded %d times, want 1", n)
	}
	if h, m, e := f.metrics.Totals(); h != 1 || m != 1 || e != 0 {
		t.Fatalf("hits %d misses %d errors %d", h, m, e)
	}
}

func TestAsideNegativeCaching(t *testing.T) {
	f := newAsideFixture(t, AsideOptions{NegativeTTL: time.Minute})
	ctx := context.Background()
	id := uuid.NewString()
	key := f.aside.Key(id)
	l := &loader{err: fmt.Errorf("get analysis: %w", ErrNotFound)}

	res, err := f.aside.Get(ctx, id, l.load)
	if !errors.Is(err, ErrNotFound) || res.Status != Miss {
		t.Fatalf("first read: %+v, %v", res, err)
	}
	// The negative hit answers ErrNotFound itself, whatever the load wrapped.
	res, err = f.aside.Get(ctx, id, l.load)
	if err != ErrNotFound || res.Status != Hit || res.Body != nil {
		t.Fatalf("second read: %+v, %v; want a HIT with ErrNotFound", res, err)
	}
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("loaded %d times, want 1 (404 not cached)", n)
	}
	if e := f.entry(t, key); e.Kind != KindNegative || e.Version != 0 {
		t.Fatalf("entry %+v, want N0", e)
	}
	if pttl := f.rdb.PTTL(ctx, key).Val(); pttl <= 0 || pttl > time.Minute {
		t.Fatalf("negative PTTL %v", pttl)
	}
}

func TestAsideLoadErrorIsNotCached(t *testing.T) {
	f := newAsideFixture(t, AsideOptions{})
	ctx := context.Background()
	id := uuid.NewString()
	key := f.aside.Key(id)
	boom := fmt.Errorf("database unavailable: %w", errors.New("connection refused"))
	l := &loader{err: boom}

	for range 2 {
		if _, err := f.aside.Get(ctx, id, l.load); !errors.Is(err, boom) {
			t.Fatalf("err = %v, want the load error", err)
		}
	}
	if n := l.calls.Load(); n != 2 {
		t.Fatalf("loaded %d times, want 2 (errors are never cached)", n)
	}
	// The lease was released, so the next reader fills at once.
	if n := f.rdb.Exists(ctx, key).Val(); n != 0 {
		t.Fatalf("key left behind after a failed load")
	}
}

func TestAsideEveryKeyHasTTL(t *testing.T) {
	ctx := context.Background()
	var leasePTTL time.Duration
	var f *asideFixture
	f = newAsideFixture(t, AsideOptions{TTL: time.Hour, NegativeTTL: 30 * time.Second, LeaseTTL: 5 * time.Second,
		AfterLoad: func(key string) {
			if e := f.entry(t, key); e.Kind != KindLease || len(e.Token) != 32 {
				t.Errorf("during the load the key holds %+v, want our lease", e)
			}
			leasePTTL = f.rdb.PTTL(ctx, key).Val()
		}})

	checks := []struct {
		name     string
		write    func(id string)
		min, max time.Duration
	}{
		{"lease", func(id string) { f.aside.Get(ctx, id, (&loader{body: []byte("x"), version: 1}).load) }, time.Hour - time.Minute, time.Hour},
		{"negative", func(id string) { f.aside.Get(ctx, id, (&loader{err: ErrNotFound}).load) }, 29 * time.Second, 30 * time.Second},
		{"set", func(id string) { f.aside.Set(ctx, id, 1, []byte("x")) }, time.Hour - time.Minute, time.Hour},
		{"tombstone", func(id string) { f.aside.Tombstone(ctx, id, 1) }, 29 * time.Second, 30 * time.Second},
	}
	for _, c := range checks {
		id := uuid.NewString()
		key := f.aside.Key(id)
		c.write(id)
		if pttl := f.rdb.PTTL(ctx, key).Val(); pttl < c.min || pttl > c.max {
			t.Errorf("%s: PTTL %v, want in [%v, %v]", c.name, pttl, c.min, c.max)
		}
	}
	if leasePTTL <= 0 || leasePTTL > 5*time.Second {
		t.Errorf("lease PTTL %v, want in (0, 5s]", leasePTTL)
	}
}

func TestAsideJitterBounds(t *testing.T) {
	f := newAsideFixture(t, AsideOptions{TTL: 100 * time.Second, Jitter: 0.2})
	ctx := context.Background()
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for i := range 40 {
		id := uuid.NewString()
		f.aside.Set(ctx, id, int64(i+1), []byte("x"))
		pttl := f.rdb.PTTL(ctx, f.aside.Key(id)).Val()
		lo, hi = min(lo, pttl), max(hi, pttl)
	}
	if lo < 79*time.Second || hi > 120*time.Second {
		t.Fatalf("PTTL range [%v, %v] outside 100s ±20%%", lo, hi)
	}
	// 40 uniform draws over ±20s all landing within 2s of each other: p < 1e-30.
	if hi-lo < 2*time.Second {
		t.Fatalf("PTTL range [%v, %v]: no jitter", lo, hi)
	}
	// The pure function over many draws: within bounds, reaching near both ends.
	dlo, dhi := time.Duration(1<<62), time.Duration(0)
	for range 10000 {
		d := spreadTTL(100*time.Second, f.aside.opt.Jitter)
		dlo, dhi = min(dlo, d), max(dhi, d)
	}
	if dlo < 80*time.Second || dhi > 120*time.Second || dlo > 81*time.Second || dhi < 119*time.Second {
		t.Fatalf("jitter range [%v, %v], want ≈[80s, 120s]", dlo, dhi)
	}
}

func TestAsideValueIsEncrypted(t *testing.T) {
	f := newAsideFixture(t, AsideOptions{})
	ctx := context.Background()
	id, other := uuid.NewString(), uuid.NewString()
	secret := `{"notes":"patient is allergic to penicillin"}`
	if _, err := f.aside.Get(ctx, id, (&loader{body: []byte(secret), version: 1}).load); err != nil {
		t.Fatal(err)
	}
	f.aside.Set(ctx, other, 1, []byte(secret))
	for _, k := range []string{f.aside.Key(id), f.aside.Key(other)} {
		raw := f.rdb.Get(ctx, k).Val()
		if raw == "" || bytes.Contains([]byte(raw), []byte("penicillin")) || bytes.Contains([]byte(raw), []byte("notes")) {
			t.Fatalf("raw entry %q holds the plaintext", raw)
		}
	}
}

func TestAsideUndecodableIsAMiss(t *testing.T) {
	ctx := context.Background()
	f := newAsideFixture(t, AsideOptions{})
	foreign := mustCodec(t) // another deploy's key
	cases := map[string][]byte{
		"other key":      foreign.Value(1, []byte("old")),
		"unknown format": []byte("\x02V1:whatever"),
		"garbage":        []byte("not an entry"),
	}
	for name, raw := range cases {
		id := uuid.NewString()
		key := f.aside.Key(id)
		f.rdb.Set(ctx, key, raw, time.Minute)
		_, _, errsBefore := f.metrics.Totals()
		l := &loader{body: []byte("fresh"), version: 2}
		res, err := f.aside.Get(ctx, id, l.load)
		if err != nil || res.Status != Miss || string(res.Body) != "fresh" {
			t.Fatalf("%s: %+v, %v", name, res, err)
		}
		if _, _, errs := f.metrics.Totals(); errs != errsBefore+1 {
			t.Errorf("%s: undecodable entry not counted", name)
		}
		// The fill replaced it with something this codec reads.
		if e := f.entry(t, key); e.Kind != KindValue || string(e.Body) != "fresh" {
			t.Errorf("%s: entry after fill %+v", name, e)
		}
	}
}

func TestAsideLeaseHeldByAnotherReader(t *testing.T) {
	f := newAsideFixture(t, AsideOptions{})
	ctx := context.Background()
	id := uuid.NewString()
	key := f.aside.Key(id)
	lease := f.codec.Lease("someone-else")
	f.rdb.Set(ctx, key, lease, time.Minute)

	res, err := f.aside.Get(ctx, id, (&loader{body: []byte("x"), version: 1}).load)
	if err != nil || res.Status != Miss || string(res.Body) != "x" {
		t.Fatalf("%+v, %v", res, err)
	}
	if raw := f.rdb.Get(ctx, key).Val(); raw != string(lease) {
		t.Fatalf("a reader without the lease filled the key: %q", raw)
	}
}

// (a) A reader loads v1, a writer commits v2 and writes it through, then the
// reader fills: the fill must be dropped and Redis must hold v2.
func TestAsideFillLosesToWrite(t *testing.T) {
	ctx := context.Background()
	id := uuid.NewString()
	var f *asideFixture
	f = newAsideFixture(t, AsideOptions{AfterLoad: func(string) {
		if err := f.aside.Set(ctx, id, 2, []byte("v2")); err != nil {
			t.Error(err)
		}
	}})
	key := f.aside.Key(id)
	res, err := f.aside.Get(ctx, id, (&loader{body: []byte("v1"), version: 1}).load)
	if err != nil || res.Version != 1 || res.Status != Miss {
		t.Fatalf("reader: %+v, %v", res, err)
	}
	if e := f.entry(t, key); e.Kind != KindValue || e.Version != 2 || string(e.Body) != "v2" {
		t.Fatalf("cache holds %+v, want v2", e)
	}
	f.aside.opt.AfterLoad = nil
	if res, _ := f.aside.Get(ctx, id, nil); res.Status != Hit || res.Version != 2 {
		t.Fatalf("next read %+v, want HIT v2", res)
	}
}

// (b) A reader loads v1, the analysis is deleted (tombstone v1), then the
// reader fills: the key must stay tombstoned and read as 404.
func TestAsideFillLosesToDelete(t *testing.T) {
	ctx := context.Background()
	id := uuid.NewString()
	var f *asideFixture
	f = newAsideFixture(t, AsideOptions{AfterLoad: func(string) {
		if err := f.aside.Tombstone(ctx, id, 1); err != nil {
			t.Error(err)
		}
	}})
	key := f.aside.Key(id)
	if _, err := f.aside.Get(ctx, id, (&loader{body: []byte("v1"), version: 1}).load); err != nil {
		t.Fatal(err)
	}
	if e := f.entry(t, key); e.Kind != KindNegative || e.Version != 1 {
		t.Fatalf("cache holds %+v, want tombstone v1", e)
	}
	f.aside.opt.AfterLoad = nil
	res, err := f.aside.Get(ctx, id, nil)
	if err != ErrNotFound || res.Status != Hit {
		t.Fatalf("read after delete: %+v, %v; want 404 HIT", res, err)
	}
}

// The version guard, one case per ordering of two writes.
func TestAsideVersionGuard(t *testing.T) {
	f := newAsideFixture(t, AsideOptions{})
	ctx := context.Background()
	// Each write takes the entity's id.
	set := func(v int64) func(string) {
		return func(id string) { f.aside.Set(ctx, id, v, []byte("v"+strconv.FormatInt(v, 10))) }
	}
	del := func(v int64) func(string) { return func(id string) { f.aside.Tombstone(ctx, id, v) } }
	// raw puts raw bytes in the entry of id.
	raw := func(b []byte) func(string) {
		return func(id string) { f.rdb.Set(ctx, f.aside.Key(id), b, time.Minute) }
	}
	// behind puts what a write-behind ingest writes (Enqueue's script).
	behind := func(v int64) func(string) { return raw(f.codec.WrittenBehind(v, []byte("w"))) }
	cases := []struct {
		name   string
		writes []func(string)
		kind   byte
		ver    int64
	}{
		{"(c) out of order: v3 then v2", []func(string){set(3), set(2)}, KindValue, 3},
		{"in order: v2 then v3", []func(string){set(2), set(3)}, KindValue, 3},
		{"(d) delayed write after delete", []func(string){del(2), set(2)}, KindNegative, 2},
		{"older write after delete", []func(string){del(2), set(1)}, KindNegative, 2},
		{"delete after write of same version", []func(string){set(2), del(2)}, KindNegative, 2},
		{"write replaces an older tombstone", []func(string){del(2), set(3)}, KindValue, 3},
		{"create replaces not-found", []func(string){raw(f.codec.Negative(0)), set(1)}, KindValue, 1},
		{"write replaces a lease", []func(string){raw(f.codec.Lease("t")), set(1)}, KindValue, 1},
		{"write replaces another format", []func(string){raw([]byte("\x02junk")), set(1)}, KindValue, 1},
		{"PATCH (v2) replaces a value written behind (v1)", []func(string){behind(1), set(2)}, KindValue, 2},
		{"tombstone beats a value written behind of equal version", []func(string){behind(1), del(1)}, KindNegative, 1},
		{"committed value beats a value written behind of equal version", []func(string){behind(1), set(1)}, KindValue, 1},
		{"older write loses to a value written behind", []func(string){behind(2), set(1)}, KindWriteBehind, 2},
		{"older tombstone loses to a value written behind", []func(string){behind(2), del(1)}, KindWriteBehind, 2},
	}
	for _, c := range cases {
		id := uuid.NewString()
		for _, w := range c.writes {
			w(id)
		}
		if e := f.entry(t, f.aside.Key(id)); e.Kind != c.kind || e.Version != c.ver {
			t.Errorf("%s: cache holds %c%d, want %c%d", c.name, e.Kind, e.Version, c.kind, c.ver)
		}
	}
}

// Many writers racing on one key with shuffled versions: the highest wins.
func TestAsideConcurrentSetsKeepNewest(t *testing.T) {
	f := newAsideFixture(t, AsideOptions{})
	ctx := context.Background()
	id := uuid.NewString()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for v := int64(1); v <= 64; v++ {
		wg.Go(func() {
			<-start
			f.aside.Set(ctx, id, v, []byte("v"+strconv.FormatInt(v, 10)))
		})
	}
	close(start)
	wg.Wait()
	if e := f.entry(t, f.aside.Key(id)); e.Version != 64 || string(e.Body) != "v64" {
		t.Fatalf("cache holds v%d %q, want v64", e.Version, e.Body)
	}
}

// (e) Redis unreachable: reads bypass and count the error; writes return
// Redis's error to their caller (the Log settles the change); a closed gate
// keeps every read off Redis, even one whose answer came back after it
// closed.
func TestAsideRedisOutage(t *testing.T) {
	ctx := context.Background()

	t.Run("unreachable", func(t *testing.T) {
		dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { dead.Close() })
		f := newAsideOn(t, dead, Keys{Prefix: "x:"}, AsideOptions{})
		id := uuid.NewString()
		res, err := f.aside.Get(ctx, id, (&loader{body: []byte("pg"), version: 1}).load)
		if err != nil || res.Status != Bypass || string(res.Body) != "pg" {
			t.Fatalf("%+v, %v; want BYPASS from the load", res, err)
		}
		if _, _, errs := f.metrics.Totals(); errs != 1 {
			t.Fatalf("errors counted: %d, want 1", errs)
		}
		if err := f.aside.Set(ctx, id, 2, []byte("x")); err == nil {
			t.Fatal("Set with Redis down: nil error; the Log must learn the change was not applied")
		}
		if err := f.aside.Tombstone(ctx, id, 2); err == nil {
			t.Fatal("Tombstone with Redis down: nil error")
		}
	})

	t.Run("closed gate bypasses", func(t *testing.T) {
		f := newAsideFixture(t, AsideOptions{})
		id := uuid.NewString()
		if err := f.aside.Set(ctx, id, 1, []byte("v1")); err != nil {
			t.Fatal(err)
		}
		f.gate.Close()
		pg := &loader{body: []byte("v2"), version: 2}
		if res, err := f.aside.Get(ctx, id, pg.load); err != nil || res.Status != Bypass || res.Version != 2 {
			t.Fatalf("closed gate: %+v, %v; want BYPASS v2 from Postgres", res, err)
		}
		epoch, _ := f.gate.beginCatchUp()
		if !f.gate.reopen(epoch) {
			t.Fatal("reopen failed with nothing closing it meanwhile")
		}
		if res, err := f.aside.Get(ctx, id, pg.load); err != nil || res.Status != Hit || res.Version != 1 {
			t.Fatalf("open gate: %+v, %v; want the cached v1 as a HIT", res, err)
		}
	})

	t.Run("gate closing during the read bypasses", func(t *testing.T) {
		f := newAsideFixture(t, AsideOptions{})
		id := uuid.NewString()
		if err := f.aside.Set(ctx, id, 1, []byte("v1")); err != nil {
			t.Fatal(err)
		}
		// The gate closes while the GET is on the wire (a hook on the client).
		f.rdb.AddHook(closeOnGet{gate: f.gate})
		pg := &loader{body: []byte("v2"), version: 2}
		if res, err := f.aside.Get(ctx, id, pg.load); err != nil || res.Status != Bypass || res.Version != 2 {
			t.Fatalf("gate closed during the GET: %+v, %v; want BYPASS v2, never the cached v1", res, err)
		}
	})
}

// closeOnGet closes gate after every GET, as a Breaker would on an outage
// another request of the process saw meanwhile.
type closeOnGet struct{ gate *Gate }

func (closeOnGet) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h closeOnGet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if cmd.Name() == "get" {
			h.gate.Close()
		}
		return err
	}
}
func (closeOnGet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// redisServer is a redis-server of this test on a spare loopback port,
// keeping its data set across stop/start in a temporary directory.
type redisServer struct {
	addr, port, dir string
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	port := strconv.Itoa(testenv.FreePort(t))
	s := &redisServer{addr: "127.0.0.1:" + port, port: port, dir: t.TempDir()}
	s.start(t)
	t.Cleanup(func() { _ = exec.Command("redis-cli", "-p", s.port, "shutdown", "nosave").Run() })
	return s
}

func (s *redisServer) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command("redis-server", "--port", s.port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", s.dir, "--daemonize", "yes", "--logfile", s.dir+"/redis.log")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start redis-server: %v: %s", err, out)
	}
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	for range 200 {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, _ := os.ReadFile(s.dir + "/redis.log")
	t.Fatalf("redis-server on %s never answered: %s", s.addr, log)
}

// stop shuts the server down after saving its data set (SHUTDOWN SAVE
// saves even with no save points), so start brings the same keys back.
func (s *redisServer) stop(t *testing.T) {
	t.Helper()
	_ = exec.Command("redis-cli", "-p", s.port, "shutdown", "save").Run()
	for range 200 {
		c, err := net.DialTimeout("tcp", s.addr, 20*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("redis-server on %s did not stop", s.addr)
}

// A value written behind (W) is a HIT reported as write-behind; a value
// (V) and a negative entry are reported as cache-aside.
func TestAsideReportsThePatternOfTheEntry(t *testing.T) {
	f := newAsideFixture(t, AsideOptions{})
	ctx := context.Background()
	l := &loader{err: ErrNotFound}
	cases := []struct {
		name    string
		entry   []byte
		pattern string
		err     error
	}{
		{"W", f.codec.WrittenBehind(1, []byte(`{"w":1}`)), PatternWriteBehind, nil},
		{"V", f.codec.Value(3, []byte(`{"v":3}`)), PatternAside, nil},
		{"N", f.codec.Negative(0), PatternAside, ErrNotFound},
		{"tombstone", f.codec.Negative(4), PatternAside, ErrNotFound},
	}
	for _, c := range cases {
		id := uuid.NewString()
		f.rdb.Set(ctx, f.aside.Key(id), c.entry, time.Minute)
		res, err := f.aside.Get(ctx, id, l.load)
		if !errors.Is(err, c.err) || res.Status != Hit || res.Pattern != c.pattern {
			t.Errorf("%s: %+v, %v; want HIT %s, %v", c.name, res, err, c.pattern, c.err)
		}
		if c.err == nil {
			want, _ := f.codec.Decode(c.entry)
			if !bytes.Equal(res.Body, want.Body) || res.Version != want.Version {
				t.Errorf("%s: body %s v%d, want %s v%d", c.name, res.Body, res.Version, want.Body, want.Version)
			}
		}
	}
	if n := l.calls.Load(); n != 0 {
		t.Fatalf("%d loads from Postgres for entries that are all hits", n)
	}
}

// A deleted analysis is never served again by a reader that raced its
// delete: the tombstone lands between the reader's GET and its lease (the
// key held an undecodable entry, or nothing), or between its load and its
// fill. Each reader loads "not found"; then a delayed write-through of the
// deleted version arrives, and the next read must still be a 404.
func TestAsideTombstoneSurvivesRacingReader(t *testing.T) {
	ctx := context.Background()
	foreign := mustCodec(t) // another deploy's key: undecodable here
	cases := []struct {
		name        string
		before      []byte // what the key holds before the reader's GET; nil: absent
		beforeLease bool   // tombstone between GET and lease, else between load and fill
	}{
		{"undecodable, tombstone before the lease", foreign.Value(2, []byte("deleted")), true},
		{"garbage, tombstone before the lease", []byte("not an entry"), true},
		{"absent, tombstone before the lease", nil, true},
		{"undecodable, tombstone before the fill", foreign.Value(2, []byte("deleted")), false},
		{"absent, tombstone before the fill", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var f *asideFixture
			id := uuid.NewString()
			tombstone := func(key string) {
				if key != f.aside.Key(id) {
					t.Errorf("hook called with key %q, want %q", key, f.aside.Key(id))
				}
				if err := f.aside.Tombstone(ctx, id, 2); err != nil {
					t.Error(err)
				}
			}
			opt := AsideOptions{TTL: time.Hour, NegativeTTL: time.Hour, LeaseTTL: time.Minute}
			if c.beforeLease {
				opt.BeforeLease = tombstone
			} else {
				opt.AfterLoad = tombstone
			}
			f = newAsideFixture(t, opt)
			key := f.aside.Key(id)
			if c.before != nil {
				f.rdb.Set(ctx, key, c.before, time.Hour)
			}
			gone := &loader{err: fmt.Errorf("get analysis: %w", ErrNotFound)}
			if _, err := f.aside.Get(ctx, id, gone.load); !errors.Is(err, ErrNotFound) {
				t.Fatalf("racing reader: %v, want not found", err)
			}
			if e := f.entry(t, key); e.Kind != KindNegative || e.Version != 2 {
				t.Errorf("after the racing reader the key holds %c%d, want the tombstone N2", e.Kind, e.Version)
			}
			f.aside.opt.BeforeLease, f.aside.opt.AfterLoad = nil, nil
			f.aside.Set(ctx, id, 2, []byte("deleted")) // delayed write-through of the deleted version
			res, err := f.aside.Get(ctx, id, gone.load)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("read after the delayed write-through: %+v (body %q), %v; want 404", res, res.Body, err)
			}
		})
	}
}

// An Aside keys and labels everything by its Resource: the entry of id is
// "{Kind}:{id}", and its lookups and Redis errors are counted with
// resource="{Kind}".
func TestAsideKeysAndMetricsCarryTheResource(t *testing.T) {
	ctx := context.Background()
	f := newAsideFixture(t, AsideOptions{})
	reg := prometheus.NewRegistry()
	widgets := Resource{Kind: "widget"}
	b := Backend{Redis: f.rdb, Keys: f.keys, Codec: f.codec, Metrics: NewMetrics(reg, quietLog), Gate: f.gate, Logger: quietLog}
	a := NewAside(b, widgets, AsideOptions{LeaseTTL: time.Minute})
	id := uuid.NewString()
	if got, want := a.Key(id), f.keys.Prefix+"widget:"+id; got != want {
		t.Fatalf("Key(%s) = %q, want %q", id, got, want)
	}
	l := &loader{body: []byte("w"), version: 1}
	for range 2 { // MISS, then HIT
		if _, err := a.Get(ctx, id, l.load); err != nil {
			t.Fatal(err)
		}
	}
	if e := f.entry(t, f.keys.Prefix+"widget:"+id); e.Kind != KindValue || string(e.Body) != "w" {
		t.Fatalf("entry %+v", e)
	}

	dead := NewAside(Backend{Redis: listsDeadRedis(t), Keys: f.keys, Codec: f.codec, Metrics: b.Metrics, Gate: f.gate, Logger: quietLog},
		widgets, AsideOptions{})
	if res, err := dead.Get(ctx, id, l.load); err != nil || res.Status != Bypass {
		t.Fatalf("Get with Redis down: %+v, %v; want BYPASS", res, err)
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"cache_lookups_total", map[string]string{"resource": "widget", "pattern": PatternAside, "result": string(Miss)}},
		{"cache_lookups_total", map[string]string{"resource": "widget", "pattern": PatternAside, "result": string(Hit)}},
		{"cache_lookups_total", map[string]string{"resource": "widget", "pattern": PatternAside, "result": string(Bypass)}},
		{"cache_errors_total", map[string]string{"resource": "widget", "pattern": PatternAside, "op": "get"}},
	} {
		if v := counterValue(t, reg, c.name, c.labels); v != 1 {
			t.Errorf("%s%v = %v, want 1", c.name, c.labels, v)
		}
	}
}

// ApplyMany writes each replacement to the entry of its ID through the
// version guard, as Set and Tombstone do.
func TestAsideApplyManyByID(t *testing.T) {
	ctx := context.Background()
	f := newAsideFixture(t, AsideOptions{})
	newer, older, gone := uuid.NewString(), uuid.NewString(), uuid.NewString()
	if err := f.aside.Set(ctx, older, 5, []byte("v5")); err != nil {
		t.Fatal(err)
	}
	err := f.aside.ApplyMany(ctx, []Replacement{
		{ID: newer, Version: 2, Body: []byte("v2")},
		{ID: older, Version: 3, Body: []byte("v3")}, // loses to the cached v5
		{ID: gone, Version: 7, Deleted: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]struct {
		kind byte
		ver  int64
	}{newer: {KindValue, 2}, older: {KindValue, 5}, gone: {KindNegative, 7}} {
		if e := f.entry(t, f.aside.Key(id)); e.Kind != want.kind || e.Version != want.ver {
			t.Errorf("entry of %s: %c%d, want %c%d", id, e.Kind, e.Version, want.kind, want.ver)
		}
	}
}
