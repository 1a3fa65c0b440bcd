package scratch

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// deadPID returns the pid of a process of this host that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run a child process: %v", err)
	}
	return cmd.Process.Pid
}

func TestStampNameRoundTrip(t *testing.T) {
	s := Now()
	name := s.Name("t_")
	got, ok := ParseStamp("t_", name)
	if !ok || !got.Created.Equal(s.Created) || got.PID != os.Getpid() || got.Host != hostTag() {
		t.Fatalf("ParseStamp(%q) = %+v, %v; want %+v", name, got, ok, s)
	}
	if _, ok := ParseStamp("t_", name+"_testmigrations"); !ok {
		t.Fatalf("a name derived from %q is not recognised", name)
	}
	if a, b := s.Name(""), s.Name(""); a == b {
		t.Fatalf("two names of one stamp are equal: %q", a)
	}
	for _, other := range []string{
		"t_0123456789ab",                    // unstamped (older runs, other tools)
		"bench_" + s.Name(""),               // another prefix
		"t_1733000000_12_zzzzzzzz_0123abcd", // host not hex
		"t_1733000000_12_0123abcd",          // a field missing
		"t_x_12_0123abcd_0123abcd",
		"postgres",
	} {
		if got, ok := ParseStamp("t_", other); ok {
			t.Errorf("ParseStamp(%q) = %+v, want not a stamped name", other, got)
		}
	}
}

func TestStampLeftover(t *testing.T) {
	now := time.Now()
	const maxAge = time.Hour
	cases := []struct {
		name string
		s    Stamp
		want bool
	}{
		{"this process", Now(), false},
		{"this process, too old", Stamp{Created: now.Add(-2 * maxAge), PID: os.Getpid(), Host: hostTag()}, true},
		{"a live process of this host", Stamp{Created: now, PID: os.Getppid(), Host: hostTag()}, false},
		{"a dead process of this host", Stamp{Created: now, PID: deadPID(t), Host: hostTag()}, true},
		{"another host, young", Stamp{Created: now, PID: deadPID(t), Host: "00000000"}, false},
		{"another host, old", Stamp{Created: now.Add(-2 * maxAge), PID: os.Getpid(), Host: "00000000"}, true},
	}
	for _, c := range cases {
		if got := c.s.Leftover(now, maxAge); got != c.want {
			t.Errorf("%s: Leftover = %v, want %v", c.name, got, c.want)
		}
	}
}
