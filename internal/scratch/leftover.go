package scratch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Stamp is what a stamped name says about the run that made it: when, by
// which process, on which host. It lets a later run recognise the
// databases and key prefixes of a run that crashed before its cleanup
// (a panic in a test goroutine ends the process without deferred calls).
type Stamp struct {
	Created time.Time // second precision
	PID     int
	Host    string // 8 hex characters: a hash of the host name
}

// Now returns the Stamp of this process, now.
func Now() Stamp {
	return Stamp{Created: time.Now().Truncate(time.Second), PID: os.Getpid(), Host: hostTag()}
}

// Name returns prefix + "{unix seconds}_{pid}_{host}_{8 random hex}": a
// name no other run uses, with no glob or quoting characters, that
// ParseStamp reads back.
func (s Stamp) Name(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + strconv.FormatInt(s.Created.Unix(), 10) + "_" + strconv.Itoa(s.PID) + "_" + s.Host + "_" + hex.EncodeToString(b)
}

// ParseStamp reads the Stamp of a name made by Stamp.Name(prefix), which may
// carry a further "_..." suffix (a database derived from a stamped one).
// ok is false for every other name.
func ParseStamp(prefix, name string) (s Stamp, ok bool) {
	rest, found := strings.CutPrefix(name, prefix)
	if !found {
		return Stamp{}, false
	}
	f := strings.SplitN(rest, "_", 5)
	if len(f) < 4 || len(f[2]) != 8 || !isHex(f[2]) || len(f[3]) != 8 || !isHex(f[3]) {
		return Stamp{}, false
	}
	secs, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || secs <= 0 {
		return Stamp{}, false
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		return Stamp{}, false
	}
	return Stamp{Created: time.Unix(secs, 0), PID: pid, Host: f[2]}, true
}

// Leftover reports whether the run that made s is over: it was made on this
// host by a process that no longer exists, or more than maxAge before now
// (the only test for another host's runs, whose processes cannot be checked).
func (s Stamp) Leftover(now time.Time, maxAge time.Duration) bool {
	if now.Sub(s.Created) > maxAge {
		return true
	}
	return s.Host == hostTag() && s.PID != os.Getpid() && !processAlive(s.PID)
}

// DropLeftoverDatabases drops, on the server of serverURL, every database
// named Stamp.Name(prefix) (or derived from one) whose Stamp is Leftover,
// and returns the names it dropped. Other databases are never touched.
func DropLeftoverDatabases(ctx context.Context, serverURL, prefix string, maxAge time.Duration) ([]string, error) {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return nil, fmt.Errorf("connect to list databases: %w", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database")
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	now := time.Now()
	var dropped []string
	for _, name := range names {
		if s, ok := ParseStamp(prefix, name); !ok || !s.Leftover(now, maxAge) {
			continue
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return dropped, fmt.Errorf("drop leftover database %s: %w", name, err)
		}
		dropped = append(dropped, name)
	}
	return dropped, nil
}

// DeleteLeftoverPrefixes unlinks every key "{keyPrefix}{stamped name}:..."
// whose Stamp (Stamp.Name("")) is Leftover, with SCAN and UNLINK in batches,
// and returns how many keys it deleted. keyPrefix must hold no glob
// characters. Keys of live runs and keys of any other form are never touched.
func DeleteLeftoverPrefixes(ctx context.Context, rdb redis.UniversalClient, keyPrefix string, maxAge time.Duration) (int, error) {
	now := time.Now()
	return unlinkScanned(ctx, rdb, keyPrefix+"*", func(key string) bool {
		name, _, found := strings.Cut(key[len(keyPrefix):], ":")
		if !found {
			return false
		}
		s, ok := ParseStamp("", name)
		return ok && s.Leftover(now, maxAge)
	})
}

// hostTag is 8 hex characters of the FNV-1a hash of the host name.
func hostTag() string {
	h := fnv.New32a()
	name, _ := os.Hostname()
	h.Write([]byte(name))
	return fmt.Sprintf("%08x", h.Sum32())
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
