package main

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeFile is the local stack `make up` starts.
const composeFile = "../../docker-compose.yml"

// loadCompose loads content as docker-compose.yml with the Compose
// specification's loader (schema validation, interpolation with an empty
// environment, consistency checks): what `docker compose config` does.
func loadCompose(t *testing.T, content []byte) (*types.Project, error) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Dir(composeFile))
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "docker-compose.yml"), Content: content}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("analysis-cache", true) })
}

// databaseName is the database a postgres:// URL names (its path).
func databaseName(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("DATABASE_URL %q: %v", raw, err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// TestComposeFile validates docker-compose.yml with compose-go (replacing a
// docker-compose install in make lint) and checks the stack: api, postgres
// and redis; the api is built from the Dockerfile and starts once both
// stores are healthy; its DATABASE_URL names the database `analyses` that
// the postgres service creates and probes; and its environment is a valid
// configuration of this service.
func TestComposeFile(t *testing.T) {
	content, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	project, err := loadCompose(t, content)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for name := range project.Services {
			if !yield(name) {
				return
			}
		}
	}); !slices.Equal(got, []string{"api", "postgres", "redis"}) {
		t.Fatalf("services %v, want api, postgres, redis", got)
	}
	api, pg, redis := project.Services["api"], project.Services["postgres"], project.Services["redis"]

	if api.Build == nil || api.Build.Dockerfile != "Dockerfile" {
		t.Errorf("api is not built from the Dockerfile: %+v", api.Build)
	}
	if len(api.Ports) != 1 || api.Ports[0].Published != "8000" || api.Ports[0].Target != 8000 {
		t.Errorf("api ports %+v, want 8000:8000", api.Ports)
	}
	for _, dep := range []string{"postgres", "redis"} {
		if c := api.DependsOn[dep].Condition; c != types.ServiceConditionHealthy {
			t.Errorf("api depends on %s with condition %q, want %s", dep, c, types.ServiceConditionHealthy)
		}
		if hc := project.Services[dep].HealthCheck; hc == nil || len(hc.Test) == 0 {
			t.Errorf("%s has no healthcheck for the api to wait on", dep)
		}
	}

	env := map[string]string{}
	for k, v := range api.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	dbURL := env["DATABASE_URL"]
	u, err := url.Parse(dbURL)
	if err != nil || u.Hostname() != "postgres" {
		t.Errorf("api DATABASE_URL %q does not point to the postgres service", dbURL)
	}
	if db := databaseName(t, dbURL); db != "analyses" {
		t.Errorf("api DATABASE_URL names database %q, want analyses", db)
	}
	if db := pg.Environment["POSTGRES_DB"]; db == nil || *db != "analyses" {
		t.Errorf("postgres service POSTGRES_DB = %v, want analyses (the database it creates)", db)
	}
	if probe := strings.Join(pg.HealthCheck.Test, " "); !strings.Contains(probe, "-d analyses") {
		t.Errorf("postgres healthcheck %q does not probe the analyses database", probe)
	}
	if r, err := url.Parse(env["REDIS_URL"]); err != nil || r.Hostname() != "redis" {
		t.Errorf("api REDIS_URL %q does not point to the redis service", env["REDIS_URL"])
	}
	if _, err := LoadConfig(func(k string) string { return env[k] }); err != nil {
		t.Errorf("the api's compose environment is not a valid configuration: %v", err)
	}
	if len(redis.Command) == 0 || !slices.Contains(redis.Command, "--appendonly") {
		t.Errorf("redis command %v: AOF is off, accepted write-behind items would not survive a restart", redis.Command)
	}

	// Control: the loader refuses what `docker compose config` refuses.
	for name, broken := range map[string]string{
		"unknown dependency": strings.Replace(string(content), "      postgres:\n        condition: service_healthy", "      nosuch:\n        condition: service_healthy", 1),
		"unknown key":        strings.Replace(string(content), "    build: .", "    biuld: .", 1),
	} {
		if broken == string(content) {
			t.Fatalf("control %q: the replacement did not apply", name)
		}
		if _, err := loadCompose(t, []byte(broken)); err == nil {
			t.Errorf("control %q: compose-go accepted a broken file", name)
		}
	}
}

// goRunLine is the command `make run` ends with.
var goRunLine = regexp.MustCompile(`(?m)^DATABASE_URL='([^']*)' .* run \./cmd/api$`)

// TestMakeRunUsesComposeDatabase: `make run` (with no DATABASE_URL in the
// environment) runs the service on the database the compose stack uses,
// `analyses`, and its `db` step creates that database when it is missing.
func TestMakeRunUsesComposeDatabase(t *testing.T) {
	for _, tool := range []string{"make", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "MAKEFLAGS=") {
			env = append(env, kv)
		}
	}
	dryRun := exec.Command("make", "-n", "run")
	dryRun.Dir, dryRun.Env = "../..", env
	out, err := dryRun.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n run: %v\n%s", err, out)
	}
	m := goRunLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("make -n run prints no `DATABASE_URL=... go run ./cmd/api`:\n%s", out)
	}
	if db := databaseName(t, string(m[1])); db != "analyses" {
		t.Errorf("make run uses database %q, docker-compose.yml uses analyses", db)
	}

	// The db step on a database that does not exist yet creates it.
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		t.Skip("TEST_DATABASE_URL is not set: make db not tried on a missing database")
	}
	name := "make_run_db_test"
	psql := func(sql string) string {
		out, err := exec.Command("psql", admin, "-Atqc", sql).CombinedOutput()
		if err != nil {
			t.Fatalf("psql %s: %v\n%s", sql, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	psql(`drop database if exists ` + name)
	t.Cleanup(func() { psql(`drop database if exists ` + name) })
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	for range 2 { // the second run finds it and changes nothing
		step := exec.Command("make", "--no-print-directory", "db", "DATABASE_URL="+u.String())
		step.Dir, step.Env = "../..", env
		if out, err := step.CombinedOutput(); err != nil {
			t.Fatalf("make db: %v\n%s", err, out)
		}
		if got := psql(`select count(*) from pg_database where datname = '` + name + `'`); got != "1" {
			t.Fatalf("after make db, database %s exists %s times", name, got)
		}
	}
}
