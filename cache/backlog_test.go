package cache

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBacklogRetriesInOrderUntilSuccess(t *testing.T) {
	var b Backlog
	ctx := context.Background()
	if !b.Ready(ctx) {
		t.Fatal("empty backlog must be ready")
	}
	down := true
	var done []int
	for i := range 3 {
		b.Defer(func(context.Context) error {
			if down {
				return errors.New("redis down")
			}
			done = append(done, i)
			return nil
		})
	}
	if b.Ready(ctx) || b.Len() != 3 {
		t.Fatalf("ready while redis down, len %d", b.Len())
	}
	down = false
	time.Sleep(RetryEvery) // reads leave a failing Redis alone that long
	if !b.Ready(ctx) || b.Len() != 0 {
		t.Fatalf("not ready after recovery, len %d", b.Len())
	}
	if len(done) != 3 || done[0] != 0 || done[2] != 2 {
		t.Fatalf("ran %v, want [0 1 2]", done)
	}
}

func TestBacklogReadersNeverWaitForADrain(t *testing.T) {
	var b Backlog
	release := make(chan struct{})
	entered := make(chan struct{})
	b.Defer(func(context.Context) error { close(entered); <-release; return nil })
	go func() { _ = b.Drain(context.Background()) }()
	<-entered
	// A drain is stuck in Redis: readers must answer BYPASS at once, and a
	// writer must still be able to queue.
	if b.Ready(context.Background()) {
		t.Fatal("Ready while a drain is in progress")
	}
	b.Defer(func(context.Context) error { return nil })
	close(release)
	if err := b.Drain(context.Background()); err != nil || b.Len() != 0 {
		t.Fatalf("drain after release: %v, len %d", err, b.Len())
	}
}

func TestBacklogRunDrainsWithoutReads(t *testing.T) {
	var b Backlog
	done := make(chan struct{})
	b.Defer(func(context.Context) error { close(done); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.Run(ctx, time.Millisecond)
	<-done // would block forever without the background drain
	for b.Len() != 0 {
		time.Sleep(time.Millisecond)
	}
}

func TestBacklogReadsBackOffAfterAFailedDrain(t *testing.T) {
	var b Backlog
	calls := 0
	b.Defer(func(context.Context) error { calls++; return errors.New("down") })
	for range 10 {
		b.Ready(context.Background())
	}
	if calls != 1 {
		t.Fatalf("%d drain attempts within RetryEvery, want 1", calls)
	}
}
