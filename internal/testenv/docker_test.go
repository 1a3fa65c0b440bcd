package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"

	"github.com/analysis-cache/service/internal/scratch"
)

// dockerRun skips t unless this run's servers are containers (run with
// TEST_FORCE_DOCKER=1, or with no URL and no local service).
func dockerRun(t *testing.T) *docker.Client {
	t.Helper()
	if sources.owner == "" {
		t.Skip("this run uses no containers (TEST_FORCE_DOCKER=1 makes it)")
	}
	pool, err := dockertest.NewPool("")
	if err != nil {
		t.Fatal(err)
	}
	return pool.Client
}

// owned lists the containers, running or not, labelled with owner.
func owned(t *testing.T, c *docker.Client, owner string) []docker.APIContainers {
	t.Helper()
	list, err := c.ListContainers(docker.ListContainersOptions{
		All: true, Filters: map[string][]string{"label": {ownerLabel + "=" + owner}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// A run whose test goroutine panics skips every deferred cleanup; its
// reaper still removes its containers once the process is gone.
func TestCrashedRunContainersAreRemoved(t *testing.T) {
	c := dockerRun(t)
	if n := len(owned(t, c, sources.owner)); n == 0 {
		t.Fatal("this run lists none of its own containers: the check below would prove nothing")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashingChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"=1")
	out, err := cmd.Output()
	if err == nil {
		t.Fatalf("the child did not crash: %s", out)
	}
	var owner string
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "CRASH-OWNER "); ok {
			owner = strings.TrimSpace(rest)
		}
	}
	if owner == "" {
		t.Fatalf("the crashed child started no containers: %s", out)
	}
	// The reaper acts once the child's process is gone; allow a loaded machine.
	deadline := time.Now().Add(60 * time.Second)
	for len(owned(t, c, owner)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the crashed run's containers (owner %s) are still there 60s after it died", owner)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The sweep removes containers of runs that are over and leaves this live
// run's alone.
func TestSweepRemovesLeftoverContainers(t *testing.T) {
	c := dockerRun(t)
	old := scratch.Now()
	old.Created = old.Created.Add(-2 * LeftoverAge)
	leftover := old.Name("")
	ctr, err := c.CreateContainer(docker.CreateContainerOptions{Config: &docker.Config{
		Image:  os.Getenv("TEST_REDIS_IMAGE"),
		Labels: map[string]string{ownerLabel: leftover},
	}})
	if err != nil {
		t.Skipf("cannot create a container from TEST_REDIS_IMAGE=%q: %v", os.Getenv("TEST_REDIS_IMAGE"), err)
	}
	t.Cleanup(func() { _ = c.RemoveContainer(docker.RemoveContainerOptions{ID: ctr.ID, Force: true}) })
	own := len(owned(t, c, sources.owner))
	if own == 0 || len(owned(t, c, leftover)) != 1 {
		t.Fatal("setup: this run's containers or the leftover are missing")
	}

	if _, err := sweepContainers(c, LeftoverAge); err != nil {
		t.Fatal(err)
	}

	if n := len(owned(t, c, leftover)); n != 0 {
		t.Errorf("the sweep left the container of a run older than LeftoverAge")
	}
	if n := len(owned(t, c, sources.owner)); n != own {
		t.Errorf("the sweep removed this live run's containers: %d of %d left", n, own)
	}
}
