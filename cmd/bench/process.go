package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// pinning reports whether processes can be pinned to a core of their own:
// taskset exists and there are at least two CPUs. Looked up once per run.
var pinning = sync.OnceValue(func() bool {
	_, err := exec.LookPath("taskset")
	return err == nil && runtime.NumCPU() >= 2
})

// pinned returns the command running name with args on CPU cpu when
// pinning is possible, unpinned otherwise.
func pinned(ctx context.Context, cpu int, name string, args ...string) *exec.Cmd {
	if pinning() {
		return exec.CommandContext(ctx, "taskset", append([]string{"-c", fmt.Sprint(cpu), name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

// process is a server the benchmark started; stop ends it.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

// startProcess starts cmd with env added to the environment, its output in
// dir/name.log.
func startProcess(name, dir string, cmd *exec.Cmd, env ...string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
		f.Close()
	}()
	return p, nil
}

// stop sends SIGTERM and waits for a graceful exit, then kills.
func (p *process) stop() {
	if p == nil {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		fmt.Fprintf(os.Stderr, "signal %s: %v\n", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady polls url until it answers 200, the process exits or timeout passes.
func (p *process) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited before %s answered (%v); log: %s", p.name, url, err, p.log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s did not answer 200 within %s; log: %s", p.name, url, timeout, p.log)
		}
	}
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// printTail writes the last n lines of the process's log to w.
func (p *process) printTail(w io.Writer, n int) {
	data, err := os.ReadFile(p.log)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	fmt.Fprintf(w, "--- last %d lines of %s ---\n%s\n", len(lines), p.log, strings.Join(lines, "\n"))
}
