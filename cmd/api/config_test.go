package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/analysis-cache/service/cache"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8000 || c.CacheTTL != time.Hour || c.ListCacheTTL != 5*time.Minute || c.CacheTTLJitter != 0.1 ||
		c.NegativeCacheTTL != 30*time.Second || c.StatsTTL != time.Minute || c.WriteBehindFlushInterval != 5*time.Second ||
		c.WriteBehindBatchSize != 100 || c.MaxBodyBytes != 1<<20 || c.MaxBulkBodyBytes != 10<<20 || c.LogFormat != "text" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadConfigReportsEveryBadValue(t *testing.T) {
	_, err := LoadConfig(env(map[string]string{
		"PORT": "eighty", "CACHE_TTL": "1 hour", "CACHE_TTL_JITTER": "2", "CACHE_ENCRYPTION_KEY": "c2hvcnQ=",
		"WRITE_BEHIND_BATCH_SIZE": "100000",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"PORT", "CACHE_TTL", "CACHE_TTL_JITTER", "CACHE_ENCRYPTION_KEY", "WRITE_BEHIND_BATCH_SIZE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestLoadConfigProductionRefusesPlaceholders(t *testing.T) {
	_, err := LoadConfig(env(map[string]string{"ENVIRONMENT": "production", "ADMIN_TOKEN": "changethis"}))
	if err == nil || !strings.Contains(err.Error(), "ADMIN_TOKEN") || !strings.Contains(err.Error(), "CACHE_ENCRYPTION_KEY") {
		t.Fatalf("got %v", err)
	}
	c, err := LoadConfig(env(map[string]string{"ENVIRONMENT": "production", "CACHE_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}))
	if err != nil || c.LogFormat != "json" {
		t.Fatalf("production config: %v %+v", err, c)
	}
}

func TestLoadConfigProductionRequiresEncryptionKey(t *testing.T) {
	_, err := LoadConfig(env(map[string]string{"ENVIRONMENT": "production"}))
	if err == nil || !strings.Contains(err.Error(), "CACHE_ENCRYPTION_KEY: required in production") {
		t.Fatalf("production without a key: %v", err)
	}
	other := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	_, err = LoadConfig(env(map[string]string{"ENVIRONMENT": "production", "CACHE_ENCRYPTION_KEY": other + "," + cache.DevelopmentKey}))
	if err == nil || !strings.Contains(err.Error(), "CACHE_ENCRYPTION_KEY: key 2 is the published development key") {
		t.Fatalf("production with the development key: %v", err)
	}
	if _, err := LoadConfig(env(map[string]string{"CACHE_ENCRYPTION_KEY": cache.DevelopmentKey})); err != nil {
		t.Fatalf("development with the development key set explicitly: %v", err)
	}
}

func TestLoadConfigEnvironment(t *testing.T) {
	for v, want := range map[string]string{"": "development", "development": "development", "local": "development", "Production": "production"} {
		c, err := LoadConfig(env(map[string]string{"ENVIRONMENT": v, "CACHE_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}))
		if err != nil || c.Environment != want {
			t.Errorf("ENVIRONMENT=%q: %q, %v", v, c.Environment, err)
		}
	}
	for _, v := range []string{"prod", "staging", "dev"} {
		_, err := LoadConfig(env(map[string]string{"ENVIRONMENT": v}))
		if err == nil || !strings.Contains(err.Error(), "ENVIRONMENT: \""+v+"\"") ||
			!strings.Contains(err.Error(), "development") || !strings.Contains(err.Error(), "production") {
			t.Errorf("ENVIRONMENT=%q: %v", v, err)
		}
	}
}

// CACHE_ENCRYPTION_KEY takes a comma-separated list (rotation); each key
// is checked, and a key listed twice is refused.
func TestLoadConfigEncryptionKeyList(t *testing.T) {
	k1, k2 := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	if _, err := LoadConfig(env(map[string]string{"CACHE_ENCRYPTION_KEY": k1 + "," + k2})); err != nil {
		t.Fatalf("two keys: %v", err)
	}
	for _, bad := range []string{k1 + ",c2hvcnQ=", k1 + "," + k1, k1 + ","} {
		_, err := LoadConfig(env(map[string]string{"CACHE_ENCRYPTION_KEY": bad}))
		if err == nil || !strings.Contains(err.Error(), "CACHE_ENCRYPTION_KEY") || strings.Contains(err.Error(), k1) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// Two processes of one development configuration (no key) read each
// other's entries: no per-process ephemeral key.
func TestDevelopmentConfigCodecsShareEntries(t *testing.T) {
	var codecs [2]*cache.Codec
	for i := range codecs {
		c, err := LoadConfig(env(nil))
		if err != nil {
			t.Fatal(err)
		}
		codecs[i], err = cache.NewCodecFromEnv(c.CacheEncryptionKey, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
	}
	e, err := codecs[1].Decode(codecs[0].Value(2, []byte("from the other process")))
	if err != nil || string(e.Body) != "from the other process" {
		t.Fatalf("%+v %v", e, err)
	}
}

func TestLoadConfigNamesTheVariable(t *testing.T) {
	_, err := LoadConfig(env(map[string]string{"LIST_CACHE_TTL": "-5s"}))
	if err == nil || err.Error() != "LIST_CACHE_TTL: -5s is not positive (a cache key without a TTL is never written)" {
		t.Errorf("LIST_CACHE_TTL=-5s: %v", err)
	}
	for _, dsn := range []string{"postgres://app:hunter2hunter2@db:notaport/app", "not a url", "postgres://app:hunter2hunter2@db/app?sslmode=bogus"} {
		_, err := LoadConfig(env(map[string]string{"DATABASE_URL": dsn}))
		if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_URL: ") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("DATABASE_URL=%q: %v", dsn, err)
		}
	}
}
