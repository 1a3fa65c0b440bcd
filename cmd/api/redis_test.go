package main

import (
	"testing"
	"time"
)

func TestRedisOptionsFromURL(t *testing.T) {
	t50 := redisTimeouts{Command: 50 * time.Millisecond, Dial: time.Second, Pool: 2 * time.Second, PoolSize: 64}
	o, err := redisOptions("redis://:pw@127.0.0.1:6380/3", t50)
	if err != nil || len(o.Addrs) != 1 || o.Addrs[0] != "127.0.0.1:6380" || o.DB != 3 || o.Password != "pw" ||
		o.MasterName != "" || isCluster(o) || o.ReadTimeout != 50*time.Millisecond || o.DialerRetries != 1 {
		t.Fatalf("single: %+v %v", o, err)
	}
	// Load is not an outage: dialling and the wait for a pooled connection
	// have their own bounds, not the command timeout.
	if o.DialTimeout != time.Second || o.PoolTimeout != 2*time.Second || o.PoolSize != 64 || o.WriteTimeout != 50*time.Millisecond {
		t.Fatalf("timeouts: dial %v pool %v size %d write %v", o.DialTimeout, o.PoolTimeout, o.PoolSize, o.WriteTimeout)
	}
	o, err = redisOptions("redis://s1:26379/0?master_name=mymaster&addr=s2:26379", t50)
	if err != nil || o.MasterName != "mymaster" || len(o.Addrs) != 2 || o.Addrs[1] != "s2:26379" || isCluster(o) {
		t.Fatalf("sentinel: %+v %v", o, err)
	}
	o, err = redisOptions("redis://n1:6379?addr=n2:6379&addr=n3:6379", t50)
	if err != nil || !isCluster(o) || len(o.Addrs) != 3 {
		t.Fatalf("cluster: %+v %v", o, err)
	}
	if _, err := redisOptions("redis://h:1?bogus=1", t50); err == nil {
		t.Fatal("an unknown option must be refused, not ignored")
	}
}

func TestHashTagged(t *testing.T) {
	for prefix, want := range map[string]bool{"{app}:": true, "app:": false, "{}:": false, "a{b}:": false} {
		if hashTagged(prefix) != want {
			t.Errorf("hashTagged(%q) = %v", prefix, !want)
		}
	}
}
