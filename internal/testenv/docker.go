package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"

	"github.com/analysis-cache/service/internal/scratch"
)

// ownerLabel marks every container testenv starts; its value is the
// scratch stamp (Stamp.Name("")) of the run that started it, so a reaper
// finds the containers of its run and a sweep those of runs that are over.
const ownerLabel = "org.analysis-cache.testenv.owner"

// reaperEnv, set to a run's owner label, makes Run act as that run's
// reaper instead of running tests.
const reaperEnv = "TESTENV_REAPER_OWNER"

// startTimeout bounds how long a container may take to answer (an initdb on
// a loaded machine included).
const startTimeout = 2 * time.Minute

// dockerEnv starts the containers of one run, each labelled with owner.
type dockerEnv struct {
	pool        *dockertest.Pool
	owner       string
	hostNetwork bool
	resources   []*dockertest.Resource
	reaper      *os.File // write end of the reaper's stdin; the reaper acts when it closes
}

// newDocker connects to the Docker engine (DOCKER_HOST, else the local
// socket), removes the leftover containers of runs that are over
// (sweepContainers) and starts this run's reaper. TEST_DOCKER_NETWORK=host
// runs the containers on the host network, each server on a free loopback
// port (for engines with no container network, e.g. dockerd --bridge=none);
// empty or "bridge" publishes the servers' ports from the default network.
func newDocker() (*dockerEnv, error) {
	pool, err := dockertest.NewPool("")
	if err == nil {
		err = pool.Client.Ping()
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the Docker engine: %w", err)
	}
	d := &dockerEnv{pool: pool, owner: scratch.Now().Name("")}
	switch n := os.Getenv("TEST_DOCKER_NETWORK"); n {
	case "", "bridge":
	case "host":
		d.hostNetwork = true
	default:
		return nil, fmt.Errorf("TEST_DOCKER_NETWORK=%q: want host, bridge or nothing", n)
	}
	if n, err := sweepContainers(pool.Client, LeftoverAge); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: sweep leftover containers:", err)
	} else if n > 0 {
		fmt.Fprintf(os.Stderr, "testenv: removed %d leftover containers of crashed runs\n", n)
	}
	if err := d.startReaper(); err != nil {
		return nil, err
	}
	return d, nil
}

// stop removes this run's containers.
func (d *dockerEnv) stop() {
	for _, r := range d.resources {
		if err := d.pool.Purge(r); err != nil {
			fmt.Fprintln(os.Stderr, "testenv: remove container:", err)
		}
	}
	d.resources = nil
}

// postgres starts a Postgres container (TEST_POSTGRES_IMAGE, default
// postgres:15-alpine; trust auth, user postgres) and returns its server URL
// once it accepts connections.
func (d *dockerEnv) postgres() (string, error) {
	return d.start("postgres", "TEST_POSTGRES_IMAGE", "postgres", "15-alpine", "5432/tcp",
		func(port string) ([]string, []string) {
			env := []string{"POSTGRES_HOST_AUTH_METHOD=trust"}
			if port == "" {
				return env, nil
			}
			return append(env, "PGPORT="+port), []string{"postgres", "-p", port, "-c", "listen_addresses=127.0.0.1"}
		},
		func(hostPort string) string {
			return "postgres://postgres@" + hostPort + "/postgres?sslmode=disable"
		}, postgresAnswers)
}

// redis starts a Redis container (TEST_REDIS_IMAGE, default redis:7-alpine)
// and returns its URL once it answers PING.
func (d *dockerEnv) redis() (string, error) {
	return d.start("redis", "TEST_REDIS_IMAGE", "redis", "7-alpine", "6379/tcp",
		func(port string) ([]string, []string) {
			if port == "" {
				return nil, nil
			}
			return nil, []string{"redis-server", "--port", port, "--bind", "127.0.0.1"}
		},
		func(hostPort string) string { return "redis://" + hostPort + "/0" }, redisAnswers)
}

// start runs a container of the image named by $imageEnv (or defRepo:defTag)
// and waits until answers(url) holds. config returns the container's
// environment and command for a host-network port, or for port "" (the
// image's defaults, port published from the bridge). On the host network a
// container that exits before answering (its port was taken meanwhile) is
// replaced on another port, up to three times.
func (d *dockerEnv) start(what, imageEnv, defRepo, defTag, containerPort string,
	config func(port string) (env, cmd []string), url func(hostPort string) string, answers func(string) bool,
) (string, error) {
	attempts := 1
	if d.hostNetwork {
		attempts = 3
	}
	var err error
	for i := 0; i < attempts; i++ {
		var u string
		var exited bool
		u, exited, err = d.startOnce(what, imageEnv, defRepo, defTag, containerPort, config, url, answers)
		if err == nil || !exited {
			return u, err
		}
	}
	return "", err
}

func (d *dockerEnv) startOnce(what, imageEnv, defRepo, defTag, containerPort string,
	config func(port string) (env, cmd []string), url func(hostPort string) string, answers func(string) bool,
) (u string, exited bool, err error) {
	opts := &dockertest.RunOptions{
		Repository: image(imageEnv, defRepo), Tag: imageTag(imageEnv, defTag),
		Labels: map[string]string{ownerLabel: d.owner},
	}
	port := ""
	if d.hostNetwork {
		p, err := freePort()
		if err != nil {
			return "", false, err
		}
		port = strconv.Itoa(p)
	}
	opts.Env, opts.Cmd = config(port)
	r, err := d.pool.RunWithOptions(opts, func(c *docker.HostConfig) {
		if d.hostNetwork {
			c.NetworkMode = "host"
		}
	})
	if err != nil {
		return "", false, fmt.Errorf("start %s container from %s:%s: %w (%s)", what, opts.Repository, opts.Tag, err, howTo)
	}
	d.resources = append(d.resources, r)
	hostPort := "127.0.0.1:" + port
	if !d.hostNetwork {
		hostPort = r.GetHostPort(containerPort)
	}
	u = url(hostPort)
	deadline := time.Now().Add(startTimeout)
	for !answers(u) {
		c, err := d.pool.Client.InspectContainer(r.Container.ID)
		if err == nil && !c.State.Running {
			logs := d.logs(r.Container.ID)
			d.purge(r)
			return "", true, fmt.Errorf("%s container (%s:%s) exited with %d before answering; its log:\n%s",
				what, opts.Repository, opts.Tag, c.State.ExitCode, logs)
		}
		if time.Now().After(deadline) {
			return "", false, fmt.Errorf("%s container (%s:%s) did not answer on %s within %v; its log:\n%s",
				what, opts.Repository, opts.Tag, hostPort, startTimeout, d.logs(r.Container.ID))
		}
		time.Sleep(500 * time.Millisecond)
	}
	return u, false, nil
}

// purge removes r now and forgets it.
func (d *dockerEnv) purge(r *dockertest.Resource) {
	_ = d.pool.Purge(r)
	for i, x := range d.resources {
		if x == r {
			d.resources = append(d.resources[:i], d.resources[i+1:]...)
			break
		}
	}
}

// logs returns the last lines a container wrote, for error messages.
func (d *dockerEnv) logs(id string) string {
	var out bytes.Buffer
	_ = d.pool.Client.Logs(docker.LogsOptions{
		Container: id, OutputStream: &out, ErrorStream: &out, Stdout: true, Stderr: true, Tail: "30",
	})
	return out.String()
}

// startReaper starts this run's reaper: the test binary again, with
// reaperEnv set, in its own session, reading a pipe whose only writer is
// this process. However this process ends (a panic in a test goroutine, a
// -timeout, a SIGKILL), the kernel closes the pipe and the reaper removes
// every container labelled with this run's owner.
func (d *dockerEnv) startReaper() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start the container reaper: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("start the container reaper: %w", err)
	}
	defer r.Close()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), reaperEnv+"="+d.owner)
	cmd.Stdin = r // stdout and stderr: /dev/null, so go test never waits for the reaper
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start the container reaper: %w", err)
	}
	_ = cmd.Process.Release()
	d.reaper = w
	return nil
}

// reap waits until the run of owner ends (its end of stdin closes), then
// removes the containers labelled with owner. It is Run's body in a reaper.
func reap(owner string) int {
	_, _ = io.Copy(io.Discard, os.Stdin)
	pool, err := dockertest.NewPool("")
	if err != nil {
		return 1
	}
	if _, err := removeContainers(pool.Client, func(v string) bool { return v == owner }); err != nil {
		return 1
	}
	return 0
}

// sweepContainers removes the containers labelled by runs that are over
// (scratch.Stamp.Leftover: a dead process of this host, or older than
// maxAge) and returns how many it removed.
func sweepContainers(c *docker.Client, maxAge time.Duration) (int, error) {
	now := time.Now()
	return removeContainers(c, func(owner string) bool {
		s, ok := scratch.ParseStamp("", owner)
		return ok && s.Leftover(now, maxAge)
	})
}

// removeContainers force-removes (with their volumes) the containers,
// running or not, whose ownerLabel value satisfies match.
func removeContainers(c *docker.Client, match func(owner string) bool) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := c.ListContainers(docker.ListContainersOptions{
		All: true, Filters: map[string][]string{"label": {ownerLabel}}, Context: ctx,
	})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	var n int
	var errs []error
	for _, ctr := range list {
		if !match(ctr.Labels[ownerLabel]) {
			continue
		}
		err := c.RemoveContainer(docker.RemoveContainerOptions{ID: ctr.ID, Force: true, RemoveVolumes: true, Context: ctx})
		var missing *docker.NoSuchContainer
		if err != nil && !errors.As(err, &missing) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", ctr.ID[:12], err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// image returns the repository part of $env ("mirror/postgres:15" → "mirror/postgres"), or def.
func image(env, def string) string {
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	if i := strings.LastIndex(v, ":"); i > strings.LastIndex(v, "/") {
		return v[:i]
	}
	return v
}

// imageTag returns the tag part of $env, or def.
func imageTag(env, def string) string {
	v := os.Getenv(env)
	if i := strings.LastIndex(v, ":"); v != "" && i > strings.LastIndex(v, "/") {
		return v[i+1:]
	}
	if v != "" {
		return "latest"
	}
	return def
}
