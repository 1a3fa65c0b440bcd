package cache

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// For fixed δ and β, the fraction of draws that recompute at a distance gap
// before expiry is exp(−gap/(δβ)). The source is seeded, so the test is
// deterministic; 20 000 draws put the binomial standard deviation under
// 0.0036, and the tolerance is 0.015.
func TestXFetchProbabilityShape(t *testing.T) {
	expiry := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	const draws = 20000
	for _, tc := range []struct {
		delta time.Duration
		beta  float64
		gap   time.Duration
	}{
		{time.Second, 1, 0},
		{time.Second, 1, 250 * time.Millisecond},
		{time.Second, 1, time.Second},
		{time.Second, 1, 3 * time.Second},
		{2 * time.Second, 1.5, 2 * time.Second},
		{500 * time.Millisecond, 2, 4 * time.Second},
	} {
		src := rand.New(rand.NewPCG(1, 2))
		now := expiry.Add(-tc.gap)
		early := 0
		for range draws {
			if xfetch(now, expiry, tc.delta, tc.beta, src.Float64()) {
				early++
			}
		}
		got := float64(early) / draws
		want := math.Exp(-tc.gap.Seconds() / (tc.delta.Seconds() * tc.beta))
		if math.Abs(got-want) > 0.015 {
			t.Errorf("δ=%v β=%v gap=%v: early fraction %.4f, want exp(−gap/δβ) = %.4f", tc.delta, tc.beta, tc.gap, got, want)
		}
	}
}

func TestXFetchEdges(t *testing.T) {
	expiry := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if !xfetch(expiry.Add(time.Second), expiry, time.Second, 1, 0) {
		t.Error("past expiry must recompute")
	}
	if xfetch(expiry.Add(-time.Millisecond), expiry, 0, 1, 0.999999) {
		t.Error("δ = 0 (no measured cost) must not recompute early")
	}
	if xfetch(expiry.Add(-time.Millisecond), expiry, time.Second, -1, 0.999999) {
		t.Error("β < 0 disables early recomputation")
	}
	if xfetch(expiry.Add(-time.Millisecond), expiry, time.Second, 1, 0) {
		t.Error("r = 0 means u = 1, ln u = 0: no early recomputation")
	}
}
