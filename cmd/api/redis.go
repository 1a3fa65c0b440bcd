package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisOptions turns REDIS_URL into the options of a redis.UniversalClient,
// so a Sentinel or a Cluster is a configuration change, not a code change:
//
//	redis://host:6379/0                                  one server
//	redis://sentinel1:26379/0?master_name=mymaster&addr=sentinel2:26379   Sentinel
//	redis://node1:6379?addr=node2:6379&addr=node3:6379   Cluster (seed nodes)
//
// Every other option of go-redis's URL format (user, password, rediss://
// for TLS, db) is honoured. The command timeout (t.Command) is short, so an
// outage costs a request tens of milliseconds before the circuit opens;
// dialling and waiting for a pooled connection have their own, longer
// bounds, so a burst or a busy machine waits instead of bypassing.
func redisOptions(raw string, t redisTimeouts) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	q := u.Query()
	extra, master := q["addr"], q.Get("master_name")
	q.Del("addr")
	q.Del("master_name")
	u.RawQuery = q.Encode()
	opt, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return &redis.UniversalOptions{
		Addrs:        append([]string{opt.Addr}, extra...),
		MasterName:   master,
		DB:           opt.DB,
		Username:     opt.Username,
		Password:     opt.Password,
		TLSConfig:    opt.TLSConfig,
		DialTimeout:  t.Dial,
		ReadTimeout:  t.Command,
		WriteTimeout: t.Command,
		PoolTimeout:  t.Pool,
		PoolSize:     t.PoolSize,
		// Fail fast: a retry doubles the time an outage costs each request,
		// and go-redis otherwise dials 5 times with backoff. The circuit
		// breaker (cache.Breaker) decides when to try again.
		MaxRetries:    -1,
		DialerRetries: 1,
	}, nil
}

// redisTimeouts are the separate bounds of redisOptions.
type redisTimeouts struct {
	Command, Dial, Pool time.Duration
	PoolSize            int
}

// isCluster reports whether opts make a redis.UniversalClient a ClusterClient.
func isCluster(opts *redis.UniversalOptions) bool {
	return opts.MasterName == "" && len(opts.Addrs) > 1
}

// hashTagged reports whether every key under prefix lands in one cluster
// slot: the prefix starts with a non-empty {hash tag}. The Lua scripts touch
// keys they build from the prefix, which Redis Cluster only allows in one slot.
func hashTagged(prefix string) bool {
	end := strings.IndexByte(prefix, '}')
	return strings.HasPrefix(prefix, "{") && end > 1
}
