package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
)

// wbAOFRedis is a redis-server of this test with appendonly yes and
// appendfsync always, on a spare loopback port, run as a child process so
// the test can kill -9 it.
type wbAOFRedis struct {
	port, dir string
	cmd       *exec.Cmd
}

func startWBAOFRedis(t *testing.T) *wbAOFRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	port := strconv.Itoa(testenv.FreePort(t))
	s := &wbAOFRedis{port: port, dir: t.TempDir()}
	s.start(t)
	t.Cleanup(func() { s.kill() })
	return s
}

func (s *wbAOFRedis) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command("redis-server", "--port", s.port, "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--dir", s.dir, "--logfile", s.dir+"/redis.log")
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + s.port})
	defer c.Close()
	for range 500 {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, _ := os.ReadFile(s.dir + "/redis.log")
	t.Fatalf("redis-server on %s never answered: %s", s.port, log)
}

// kill is kill -9: no shutdown, no final fsync, no save.
func (s *wbAOFRedis) kill() {
	if s.cmd != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// TestWriteBehindSurvivesRedisCrashWithAOF: with appendfsync always, every
// ingest answered nil is on disk; Redis killed -9 between ingest and flush
// comes back with every entry, and the flush loses nothing.
func TestWriteBehindSurvivesRedisCrashWithAOF(t *testing.T) {
	env := testenv.Get(t)
	srv := startWBAOFRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + srv.port})
	t.Cleanup(func() { rdb.Close() })
	f := newWBFixtureOn(t, rdb, openWBRepo(t, env.DatabaseURL), Keys{Prefix: env.RedisPrefix + "wb-aof:"})
	ctx := context.Background()
	wb, _ := f.writeBehind("a", wbFast)

	var accepted []uuid.UUID
	for b := range 5 {
		items := make([]domain.Analysis, 40)
		for i := range items {
			items[i] = newWBItem(uuid.New(), fmt.Sprint("aof", b, "-", i))
		}
		if err := wb.Enqueue(ctx, items, nil); err != nil {
			t.Fatal(err)
		}
		accepted = append(accepted, wbIDs(items)...)
	}
	srv.kill()
	if err := wb.Enqueue(ctx, []domain.Analysis{newWBItem(uuid.New(), "down")}, nil); !errors.Is(err, ErrQueueUnavailable) {
		t.Fatalf("Enqueue with Redis dead = %v, want ErrQueueUnavailable", err)
	}
	srv.start(t)

	n, err := wb.Flush(ctx)
	if err != nil || n != len(accepted) {
		t.Fatalf("Flush after the Redis crash = %d, %v; want %d", n, err, len(accepted))
	}
	if got := f.rowCount(t, accepted); got != int64(len(accepted)) {
		t.Fatalf("%d of %d accepted rows in Postgres after the Redis crash", got, len(accepted))
	}
}
