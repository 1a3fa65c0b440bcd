package cache

import (
	"testing"
	"time"
)

// TestWBBackoffRange: the n-th wait lies in [d/2, d], d doubling from 50ms
// to the cap (the flush interval bounded to [100ms, 5s]), and Reset starts over.
func TestWBBackoffRange(t *testing.T) {
	for _, flush := range []time.Duration{time.Millisecond, time.Second, time.Minute} {
		ceiling := min(max(flush, 100*time.Millisecond), 5*time.Second)
		for range 200 {
			bo := wbBackoff(flush)
			for round := range 2 {
				d := 50 * time.Millisecond
				for n := range 10 {
					// backoff adds at most 1ns to the top of its range.
					if got := bo.NextBackOff(); got < d/2 || got > d+time.Nanosecond {
						t.Fatalf("flush %v, round %d, wait %d: %v not in [%v, %v]", flush, round, n+1, got, d/2, d)
					}
					d = min(2*d, ceiling)
				}
				bo.Reset()
			}
		}
	}
}
