package main

import (
	"strings"
	"testing"
	"time"
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
