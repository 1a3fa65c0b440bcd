package cache

import (
	"math"
	"time"
)

// xfetch decides whether a reader should recompute a value before its soft
// expiry (Vattani, Chierichetti, Lowenstein: "Optimal Probabilistic Cache
// Stampede Prevention", VLDB 2015):
//
//	recompute ⇔ now − δ·β·ln(u) ≥ expiry,   u uniform in (0, 1]
//
// δ is how long the last computation took and β ≥ 0 tunes eagerness (1 is
// the paper's optimum; larger recomputes earlier). Since −ln(u) is
// exponential with mean 1, the probability at a distance gap = expiry − now
// is exp(−gap / (δ·β)): negligible while the value is young, rising to 1 at
// expiry, and rising earlier for slower computations, so the expected
// recomputation starts about δ·β before expiry and one reader, not a crowd,
// triggers it. r is a draw in [0, 1) (math/rand's convention); 1−r maps it
// to (0, 1] so ln never sees 0.
func xfetch(now, expiry time.Time, delta time.Duration, beta, r float64) bool {
	if !now.Before(expiry) {
		return true
	}
	if delta <= 0 || beta <= 0 {
		return false
	}
	early := time.Duration(-float64(delta) * beta * math.Log(1-r))
	return !now.Add(early).Before(expiry)
}
