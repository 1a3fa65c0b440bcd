package testenv

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestChooseOrder(t *testing.T) {
	up := func(string) bool { return true }
	down := func(string) bool { return false }
	for _, c := range []struct {
		name     string
		force    bool
		env      string
		answers  func(string) bool
		wantURL  string
		wantFrom source
	}{
		{"env wins over a local service", false, "env://x", up, "env://x", fromEnv},
		{"local service when env is unset", false, "", up, "local://x", fromLocal},
		{"docker when nothing answers", false, "", down, "", fromDocker},
		{"forced docker ignores env", true, "env://x", up, "", fromDocker},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, from := choose(c.force, c.env, "local://x", c.answers)
			if u != c.wantURL || from != c.wantFrom {
				t.Fatalf("choose = %q, %s; want %q, %s", u, from, c.wantURL, c.wantFrom)
			}
		})
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(p)
}

func TestAnswersChecksTheServer(t *testing.T) {
	port := closedPort(t)
	if postgresAnswers("postgres://postgres@127.0.0.1:" + port + "/postgres?sslmode=disable") {
		t.Error("postgresAnswers holds for a closed port")
	}
	if redisAnswers("redis://127.0.0.1:" + port + "/0") {
		t.Error("redisAnswers holds for a closed port")
	}
	env := Get(t)
	if !postgresAnswers(env.DatabaseURL) {
		t.Error("postgresAnswers fails for this run's database")
	}
	if !redisAnswers(env.RedisURL) {
		t.Error("redisAnswers fails for this run's Redis")
	}
}

// With no URL, no local service and no Docker engine, the run fails with
// the message that lists every way to provide the servers, and the
// engine's error.
func TestServersWithNothingSaysHow(t *testing.T) {
	keepSources(t)
	port := closedPort(t)
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	sel := selection{
		dbLocal:    "postgres://postgres@127.0.0.1:" + port + "/postgres?sslmode=disable",
		redisLocal: "redis://127.0.0.1:" + port + "/0",
		docker:     newDocker,
	}
	_, _, stop, err := servers(sel)
	if stop != nil {
		stop()
	}
	if err == nil {
		t.Fatal("servers found Postgres and Redis with no URL, no local service and no Docker engine")
	}
	for _, want := range []string{"TEST_DATABASE_URL", "TEST_REDIS_URL", "127.0.0.1:5432", "Docker engine", "/nonexistent/docker.sock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the message does not mention %q: %v", want, err)
		}
	}
}

// When the environment or the local services provide both servers, Docker
// is never asked.
func TestServersFromEnvNeedNoDocker(t *testing.T) {
	keepSources(t)
	env := Get(t)
	sel := selection{
		dbEnv: env.DatabaseURL, redisEnv: env.RedisURL,
		docker: func() (*dockerEnv, error) { return nil, errors.New("docker was asked") },
	}
	db, rd, _, err := servers(sel)
	if err != nil || db != env.DatabaseURL || rd != env.RedisURL {
		t.Fatalf("servers = %q, %q, %v", db, rd, err)
	}
	// The same servers as local services, with no URL set.
	sel.dbEnv, sel.redisEnv, sel.dbLocal, sel.redisLocal = "", "", env.DatabaseURL, env.RedisURL
	db, rd, _, err = servers(sel)
	if err != nil || db != env.DatabaseURL || rd != env.RedisURL {
		t.Fatalf("with local services answering: servers = %q, %q, %v", db, rd, err)
	}
}

// keepSources restores this run's sources after a test that calls servers.
func keepSources(t *testing.T) {
	saved := sources
	t.Cleanup(func() { sources = saved })
}
