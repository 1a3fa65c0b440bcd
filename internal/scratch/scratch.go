// Package scratch creates and removes the private databases and Redis key
// prefixes that integration tests (internal/testenv) and benchmarks
// (cmd/bench) work in, so that runs never see each other's data.
package scratch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// Name returns prefix followed by 12 random hex characters: a database name
// or key prefix no other run uses, with no glob or quoting characters.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return prefix + hex.EncodeToString(b)
}

// CreateDatabase creates database name on the server of serverURL and
// returns the URL of the new database.
func CreateDatabase(ctx context.Context, serverURL, name string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", fmt.Errorf("parse database URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", fmt.Errorf("connect %s: %w", u.Redacted(), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DropDatabase drops database name on the server of serverURL, closing the
// connections still open to it.
func DropDatabase(ctx context.Context, serverURL, name string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("connect to drop %s: %w", name, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// DeletePrefix unlinks every key under prefix with SCAN and UNLINK in
// batches (never KEYS) and returns how many it deleted. prefix must hold no
// glob characters (Name's do not).
func DeletePrefix(ctx context.Context, rdb redis.UniversalClient, prefix string) (int, error) {
	return unlinkScanned(ctx, rdb, prefix+"*", func(string) bool { return true })
}

// unlinkScanned SCANs match and UNLINKs, in batches of 1000, the keys keep
// accepts; it returns how many it deleted.
func unlinkScanned(ctx context.Context, rdb redis.UniversalClient, match string, keep func(key string) bool) (int, error) {
	n := 0
	batch := make([]string, 0, 1000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
			return fmt.Errorf("unlink: %w", err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	iter := rdb.Scan(ctx, 0, match, 1000).Iterator()
	for iter.Next(ctx) {
		if !keep(iter.Val()) {
			continue
		}
		if batch = append(batch, iter.Val()); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return n, fmt.Errorf("scan %s: %w", match, err)
	}
	return n, flush()
}
