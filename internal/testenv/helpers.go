package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var binaries struct {
	sync.Mutex
	dir   string
	built map[string]string // main package → executable
}

// Binary builds the main package pkg (an import path, e.g.
// "github.com/analysis-cache/service/cmd/api") once per test process and
// returns the executable's path, for tests that need a real process they can
// signal or kill -9. Run removes the executables when the package's tests end.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	binaries.Lock()
	defer binaries.Unlock()
	if path, ok := binaries.built[pkg]; ok {
		return path
	}
	if binaries.dir == "" {
		dir, err := os.MkdirTemp("", "testenv-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binaries.dir, binaries.built = dir, map[string]string{}
	}
	path := filepath.Join(binaries.dir, fmt.Sprintf("bin%d", len(binaries.built)))
	if out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	binaries.built[pkg] = path
	return path
}

// removeBinaries deletes what Binary built.
func removeBinaries() {
	binaries.Lock()
	defer binaries.Unlock()
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
		binaries.dir, binaries.built = "", nil
	}
}

// PollUntil polls cond every few milliseconds and fails t when it never
// holds within a minute: a hang guard for a mechanism that is missing, not a
// timing assertion (the bound survives a loaded machine).
func PollUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
