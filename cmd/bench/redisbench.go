package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisBenchmark runs redis-benchmark GET with the size of a real cache
// entry against a private redis-server (so its SET of unprefixed keys never
// touches the shared Redis), pinned like the service: server on CPU 0,
// client on CPU 1.
func (b *bench) redisBenchmark(ctx context.Context) error {
	size, err := b.rdb.StrLen(ctx, b.prefix+"analysis:"+b.ids[0].String()).Result()
	if err != nil {
		return fmt.Errorf("size of a cache entry: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	srv, err := startProcess("redis-server", b.dir, pinned(context.Background(), 0, "redis-server",
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no", "--dir", b.dir))
	if err != nil {
		return err
	}
	defer srv.stop()
	// redis-benchmark spins instead of failing when its server is not up
	// yet, so wait for a PONG first, and bound the run.
	private := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer private.Close()
	for attempt := 0; private.Ping(ctx).Err() != nil; attempt++ {
		if attempt == 100 {
			return fmt.Errorf("private redis-server on :%d does not answer (log: %s)", port, srv.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	requests := int(b.p.Duration.Seconds()) * 40_000
	runCtx, cancel := context.WithTimeout(ctx, 10*b.p.Duration+30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := pinned(runCtx, 1, "redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-t", "set,get", "-d", strconv.FormatInt(size, 10), "-c", strconv.Itoa(b.p.conns),
		"-n", strconv.Itoa(requests), "--csv")
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("redis-benchmark: %w (log: %s)", err, srv.log)
	}
	records, err := csv.NewReader(&out).ReadAll()
	if err != nil {
		return fmt.Errorf("parse redis-benchmark csv: %w", err)
	}
	for _, rec := range records {
		// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
		if len(rec) < 7 || rec[0] != "GET" {
			continue
		}
		rps, err1 := strconv.ParseFloat(rec[1], 64)
		p50, err2 := strconv.ParseFloat(rec[4], 64)
		p99, err3 := strconv.ParseFloat(rec[6], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return fmt.Errorf("parse redis-benchmark GET line %q", rec)
		}
		b.rep.add(row{Name: rowCeilRedisBM, Rate: rps, Unit: "ops/s",
			P50: time.Duration(p50 * float64(time.Millisecond)), P99: time.Duration(p99 * float64(time.Millisecond)),
			Note: fmt.Sprintf("%d-byte value, %d connections, private redis-server", size, b.p.conns)})
		return nil
	}
	return fmt.Errorf("redis-benchmark printed no GET line: %s", out.String())
}
