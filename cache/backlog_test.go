package cache

import (
	"context"
	"errors"
	"testing"
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
	if !b.Ready(ctx) || b.Len() != 0 {
		t.Fatalf("not ready after recovery, len %d", b.Len())
	}
	if len(done) != 3 || done[0] != 0 || done[2] != 2 {
		t.Fatalf("ran %v, want [0 1 2]", done)
	}
}
