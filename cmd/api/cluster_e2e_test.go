package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/cache"
)

// redisCluster is a 3-master Redis Cluster of redis-server processes this
// test started on loopback ports; t.Cleanup shuts it down.
type redisCluster struct {
	ports []int
	dir   string
}

// url is the cluster as REDIS_URL: the first node plus addr= for the others.
func (c *redisCluster) url() string {
	u := fmt.Sprintf("redis://127.0.0.1:%d", c.ports[0])
	for i, p := range c.ports[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += fmt.Sprintf("%saddr=127.0.0.1:%d", sep, p)
	}
	return u
}

// client is a ClusterClient of the test's own, to look at keys.
func (c *redisCluster) client() *redis.ClusterClient {
	addrs := make([]string, len(c.ports))
	for i, p := range c.ports {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(p)
	}
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
}

// startRedisCluster starts three cluster-enabled redis-servers in a temp
// dir, joins them with redis-cli --cluster create (no replicas) and waits
// until every node reports cluster_state:ok. It skips the test only when
// the binaries are not installed.
func startRedisCluster(t *testing.T) *redisCluster {
	t.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("Redis Cluster test needs %s on PATH: %v", bin, err)
		}
	}
	c := &redisCluster{dir: t.TempDir()}
	run := func(name string, args ...string) (string, error) {
		out, err := exec.Command(name, args...).CombinedOutput()
		return string(out), err
	}
	// Registered before the servers start (and after TempDir, so it runs
	// before the dir is removed): whatever fails below, every server that
	// did start is shut down.
	t.Cleanup(func() {
		for _, p := range c.ports {
			if out, err := run("redis-cli", "-p", strconv.Itoa(p), "shutdown", "nosave"); err != nil && !strings.Contains(out, "connect") {
				t.Logf("redis-cli -p %d shutdown nosave: %v %s", p, err, out)
			}
			// The server we started may not answer (hung, half-started):
			// end it by the pid it wrote, never by name.
			if b, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("redis-%d.pid", p))); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					if proc, err := os.FindProcess(pid); err == nil && proc.Signal(syscall.Signal(0)) == nil {
						_ = proc.Kill()
					}
				}
			}
		}
		if t.Failed() {
			for _, p := range c.ports {
				if b, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("redis-%d.log", p))); err == nil {
					t.Logf("redis-%d.log:\n%s", p, b)
				}
			}
		}
	})
	for range 3 {
		p := clusterPort(t)
		c.ports = append(c.ports, p)
		ps := strconv.Itoa(p)
		out, err := run("redis-server", "--port", ps, "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+ps+".conf",
			"--save", "", "--appendonly", "no", "--daemonize", "yes", "--dir", c.dir,
			"--pidfile", filepath.Join(c.dir, "redis-"+ps+".pid"),
			"--logfile", filepath.Join(c.dir, "redis-"+ps+".log"))
		if err != nil {
			t.Fatalf("redis-server on %d: %v %s", p, err, out)
		}
	}
	for _, p := range c.ports {
		waitFor(t, fmt.Sprintf("redis-server on %d to answer PING", p), func() bool {
			out, err := run("redis-cli", "-p", strconv.Itoa(p), "ping")
			return err == nil && strings.TrimSpace(out) == "PONG"
		})
	}
	args := []string{"--cluster", "create"}
	for _, p := range c.ports {
		args = append(args, "127.0.0.1:"+strconv.Itoa(p))
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := run("redis-cli", args...); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, p := range c.ports {
		waitFor(t, fmt.Sprintf("node %d to report cluster_state:ok", p), func() bool {
			out, err := run("redis-cli", "-p", strconv.Itoa(p), "cluster", "info")
			return err == nil && strings.Contains(out, "cluster_state:ok")
		})
	}
	return c
}

// clusterPort returns a free loopback port P whose cluster bus port
// P+10000 is free too (a node listens on both; P above 55535 cannot start).
func clusterPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		if p+10000 < 65536 {
			if bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
				bus.Close()
				l.Close()
				return p
			}
		}
		l.Close()
	}
	t.Fatal("no free port pair for a cluster node in 100 tries")
	return 0
}

// waitFor polls cond every 50 ms for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// offSeedPrefix returns a random "{t<hex>}:" prefix whose slot is served
// by a master other than the first seed node, so that a client that did not
// follow cluster routing (MOVED) would fail on every key.
func offSeedPrefix(t *testing.T, cc *redis.ClusterClient, seed int) string {
	t.Helper()
	ctx := context.Background()
	//lint:ignore SA1019 CLUSTER SLOTS still answers on Redis 7 and lists each range's master first, all this needs
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	seedAddr := "127.0.0.1:" + strconv.Itoa(seed)
	for range 100 {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		tag := "t" + hex.EncodeToString(b)
		slot, err := cc.ClusterKeySlot(ctx, "{"+tag+"}").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range slots {
			if int64(r.Start) <= slot && slot <= int64(r.End) && r.Nodes[0].Addr != seedAddr {
				return "{" + tag + "}:"
			}
		}
	}
	t.Fatal("no hash tag off the seed node in 100 tries")
	return ""
}

// admin sends an authenticated admin request and decodes the one integer
// field of its answer.
func admin(t *testing.T, base, path, body, field string) int64 {
	t.Helper()
	resp, b := call(t, "POST", base+path, body, "Authorization", "Bearer "+testAdminToken)
	expect(t, resp, b, http.StatusOK)
	var m map[string]int64
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %s: %v", path, body, b, err)
	}
	n, ok := m[field]
	if !ok {
		t.Fatalf("%s %s: %s has no %q", path, body, b, field)
	}
	return n
}

// get reads url and checks the status and X-Cache.
func get(t *testing.T, url string, status int, xcache string) []byte {
	t.Helper()
	resp, body := call(t, "GET", url, "")
	expect(t, resp, body, status)
	if got := resp.Header.Get("X-Cache"); got != xcache {
		t.Fatalf("GET %s: X-Cache %q (%s), want %s", url, got, resp.Header.Get("X-Cache-Pattern"), xcache)
	}
	return body
}

// scanCount counts the keys matching match on every master of the cluster.
func scanCount(t *testing.T, cc *redis.ClusterClient, match string) int64 {
	t.Helper()
	var n atomic.Int64
	err := cc.ForEachMaster(context.Background(), func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, match, 1000).Iterator()
		var c int64
		for iter.Next(ctx) {
			c++
		}
		n.Add(c) // ForEachMaster visits the masters concurrently
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return n.Load()
}

// TestEveryPatternOnRedisCluster runs the service against a real 3-master
// Redis Cluster (its prefix's slot on a node other than the seed) and drives
// every caching pattern over HTTP: write-through and cache-aside, version
// (namespace) and tag invalidation of lists, delete, write-behind ingest
// and flush, the stampede-guarded stats, and each admin invalidation. Every
// Lua script, pipeline, stream command and pub/sub call of the service thus
// runs on a ClusterClient; a cross-slot key or a misrouted script fails here.
func TestEveryPatternOnRedisCluster(t *testing.T) {
	cluster := startRedisCluster(t)
	cc := cluster.client()
	t.Cleanup(func() { _ = cc.Close() })
	ctx := context.Background()
	prefix := offSeedPrefix(t, cc, cluster.ports[0])
	keys := cache.Keys{Prefix: prefix}

	base := startServer(t, map[string]string{
		"REDIS_URL":          cluster.url(),
		"CACHE_PREFIX":       prefix,
		"NEGATIVE_CACHE_TTL": "10m", // the tombstone is still there to count by pattern
		// The flusher's blocking read ends within this at shutdown.
		"WRITE_BEHIND_FLUSH_INTERVAL": "200ms",
	})
	resp, body := call(t, "GET", base+"/ready", "")
	expect(t, resp, body, http.StatusOK)

	// Write-through, then cache-aside HIT; the entry is in the cluster.
	owner := uuid.NewString()
	a := createAnalysis(t, base, owner, "first")
	one := base + "/api/v1/analyses/" + a.ID
	get(t, one, 200, "HIT")
	if n, err := cc.Exists(ctx, keys.Entity("analysis", a.ID)).Result(); err != nil || n != 1 {
		t.Fatalf("EXISTS %s on the cluster: %d %v", keys.Entity("analysis", a.ID), n, err)
	}

	// Lists: MISS, then HIT.
	list := base + "/api/v1/analyses?owner_id=" + owner
	users := base + "/api/v1/users/" + owner + "/analyses"
	for _, u := range []string{list, users} {
		get(t, u, 200, "MISS")
		if b := get(t, u, 200, "HIT"); !strings.Contains(string(b), `"title":"first"`) || !strings.Contains(string(b), `"count":1`) {
			t.Fatalf("%s: %s", u, b)
		}
	}

	// PATCH (write-through, version guard): the single read shows v2 at
	// once and both lists were invalidated (namespace bump, user tag).
	resp, body = call(t, "PATCH", one, `{"title":"second"}`, "If-Match", `"1"`)
	expect(t, resp, body, 200)
	var got analysisJSON
	if err := json.Unmarshal(get(t, one, 200, "HIT"), &got); err != nil || got.Version != 2 || got.Title != "second" {
		t.Fatalf("GET after PATCH: %+v %v", got, err)
	}
	for _, u := range []string{list, users} {
		if b := get(t, u, 200, "MISS"); !strings.Contains(string(b), `"title":"second"`) || !strings.Contains(string(b), `"version":2`) {
			t.Fatalf("%s after PATCH: %s", u, b)
		}
		get(t, u, 200, "HIT")
	}

	// A second analysis, then DELETE of the first: tombstone, lists updated.
	b2 := createAnalysis(t, base, owner, "other")
	resp, body = call(t, "DELETE", one, "")
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	if b := get(t, one, 404, "HIT"); string(b) != `{"detail":"Analysis not found"}` {
		t.Fatalf("GET after DELETE: %s", b)
	}
	for _, u := range []string{list, users} {
		if b := get(t, u, 200, "MISS"); !strings.Contains(string(b), `"count":1`) || !strings.Contains(string(b), b2.ID) {
			t.Fatalf("%s after DELETE: %s", u, b)
		}
	}

	// Write-behind: 202, every id a HIT from the cache at once; after the
	// admin flush every row is in Postgres and the lists show them.
	bulkOwner := uuid.NewString()
	const bulkN = 25
	items := make([]string, bulkN)
	for i := range items {
		items[i] = fmt.Sprintf(`{"owner_id":%q,"url":"https://example.com/%d","title":"bulk %d","tags":["bulk"]}`, bulkOwner, i, i)
	}
	resp, body = call(t, "POST", base+"/api/v1/analyses/bulk", `{"items":[`+strings.Join(items, ",")+`]}`)
	expect(t, resp, body, http.StatusAccepted)
	var accepted struct {
		Accepted int      `json:"accepted"`
		IDs      []string `json:"ids"`
	}
	if err := json.Unmarshal(body, &accepted); err != nil || accepted.Accepted != bulkN || len(accepted.IDs) != bulkN {
		t.Fatalf("bulk: %s %v", body, err)
	}
	for _, id := range accepted.IDs {
		resp, body := call(t, "GET", base+"/api/v1/analyses/"+id, "")
		expect(t, resp, body, 200)
		if resp.Header.Get("X-Cache") != "HIT" || resp.Header.Get("X-Cache-Pattern") != "write-behind" {
			t.Fatalf("GET bulk id %s: %q %q", id, resp.Header.Get("X-Cache"), resp.Header.Get("X-Cache-Pattern"))
		}
	}
	// The flusher wakes on new entries (FLUSH_INTERVAL bounds only its wait
	// on an empty stream), so it may have committed some or all of them
	// already: the admin flush commits the rest and counts only those.
	if n := admin(t, base, "/api/v1/cache/write-behind/flush", "", "flushed"); n < 0 || n > bulkN {
		t.Fatalf("flushed %d, want 0..%d", n, bulkN)
	}
	bulkList := base + "/api/v1/analyses?owner_id=" + bulkOwner + "&limit=100"
	if b := get(t, bulkList, 200, "MISS"); !strings.Contains(string(b), `"count":`+strconv.Itoa(bulkN)) {
		t.Fatalf("bulk list after flush: %s", b)
	}
	if b := get(t, base+"/api/v1/users/"+bulkOwner+"/analyses?limit=100", 200, "MISS"); !strings.Contains(string(b), `"count":`+strconv.Itoa(bulkN)) {
		t.Fatalf("bulk user list after flush: %s", b)
	}

	// Stats: computed once under the stampede guard, then served from cache.
	stats := base + "/api/v1/analyses/stats"
	first := get(t, stats, 200, "MISS")
	if second := get(t, stats, 200, "HIT"); string(first) != string(second) {
		t.Fatalf("stats HIT differs: %s vs %s", first, second)
	}

	// Admin invalidation by keys: the entry existed, so 1; the next read is a MISS.
	b2key := "analysis:" + b2.ID
	if n := admin(t, base, "/api/v1/cache/invalidate", `{"keys":[`+strconv.Quote(b2key)+`,"analysis:`+uuid.NewString()+`"]}`, "invalidated"); n != 1 {
		t.Fatalf("invalidate keys: %d, want 1", n)
	}
	get(t, base+"/api/v1/analyses/"+b2.ID, 200, "MISS")
	get(t, base+"/api/v1/analyses/"+b2.ID, 200, "HIT")

	// By pattern: the count is the number of analysis entries the cluster
	// held (values, write-behind values, the tombstone); none is left after.
	want := scanCount(t, cc, prefix+"analysis:*")
	if want < bulkN+2 {
		t.Fatalf("only %d analysis keys on the cluster before the pattern invalidation", want)
	}
	if n := admin(t, base, "/api/v1/cache/invalidate", `{"pattern":"analysis:*"}`, "invalidated"); n != want {
		t.Fatalf("invalidate pattern: %d, want %d", n, want)
	}
	if left := scanCount(t, cc, prefix+"analysis:*"); left != 0 {
		t.Fatalf("%d analysis keys left after the pattern invalidation", left)
	}
	if n, err := cc.Exists(ctx, prefix+"wb:stream").Result(); err != nil || n != 1 {
		t.Fatalf("the write-behind stream must survive a pattern invalidation: %d %v", n, err)
	}
	get(t, base+"/api/v1/analyses/"+accepted.IDs[0], 200, "MISS")

	// By tag: the owner's cached user page goes, and only it.
	get(t, users, 200, "HIT")
	if n := admin(t, base, "/api/v1/cache/invalidate", `{"tags":["user:`+owner+`"]}`, "invalidated"); n != 1 {
		t.Fatalf("invalidate tags: %d, want 1", n)
	}
	get(t, users, 200, "MISS")

	// By namespace: every filtered list page cached under the current version
	// (the flush bumped it since the pages above were cached).
	for _, u := range []string{list, bulkList} {
		call(t, "GET", u, "")
		get(t, u, 200, "HIT")
	}
	if n := admin(t, base, "/api/v1/cache/invalidate", `{"namespace":"analyses"}`, "invalidated"); n != 2 {
		t.Fatalf("invalidate namespace: %d, want 2", n)
	}
	get(t, list, 200, "MISS")
	get(t, bulkList, 200, "MISS")

	// Nothing above fell back to Postgres or failed in Redis.
	resp, body = call(t, "GET", base+"/api/v1/cache/stats", "", "Authorization", "Bearer "+testAdminToken)
	expect(t, resp, body, http.StatusOK)
	var cs struct {
		Errors int64 `json:"errors"`
	}
	if err := json.Unmarshal(body, &cs); err != nil || cs.Errors != 0 {
		t.Fatalf("cache stats on the cluster: %s (%v), want errors 0", body, err)
	}

	// The whole cache lives in the prefix's one slot: no key of it is on the seed node.
	seed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(cluster.ports[0])})
	defer seed.Close()
	if ks, _, err := seed.Scan(ctx, 0, cache.EscapeGlob(prefix)+"*", 1000).Result(); err != nil || len(ks) != 0 {
		t.Fatalf("keys of the prefix on the seed node: %v %v", ks, err)
	}
	if n := scanCount(t, cc, cache.EscapeGlob(prefix)+"*"); n == 0 {
		t.Fatal("no key of the prefix on the cluster")
	}
}

// TestClusterNeedsHashTaggedPrefix: on a Cluster URL, Run refuses a prefix
// without a leading {hash tag} (its Lua scripts would touch keys in
// several slots) before it serves anything.
func TestClusterNeedsHashTaggedPrefix(t *testing.T) {
	for _, prefix := range []string{"app:", "{}app:", "app:{x}:"} {
		t.Run(prefix, func(t *testing.T) {
			m := NewMain(testConfig(t, map[string]string{
				// No server needs to listen: the check comes before any dial.
				"REDIS_URL":    "redis://127.0.0.1:1?addr=127.0.0.1:2&addr=127.0.0.1:3",
				"CACHE_PREFIX": prefix,
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := m.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), "CACHE_PREFIX") || !strings.Contains(err.Error(), "hash tag") {
				t.Fatalf("Run with CACHE_PREFIX %q on a cluster: %v, want the CACHE_PREFIX hash-tag error", prefix, err)
			}
			select {
			case <-m.Ready:
				t.Fatal("the server became ready")
			default:
			}
		})
	}
}
