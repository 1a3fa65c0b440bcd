package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
)

// ErrUndecodable is wrapped by every Decode failure: an unknown format
// byte, a malformed header, or a value that fails authentication (sealed
// with another key, or tampered with). Callers treat it as a miss and count
// it; they never serve or propagate the raw bytes.
var ErrUndecodable = errors.New("undecodable cache entry")

// Entry format (docs/design.md, "Entry format"):
//
//	[format byte 0x01][kind byte]{version decimal}:{payload}
//
// The Lua scripts of aside.go and writebehind_scripts.go read the kind with
// string.byte(v, 2) (86 = 'V', 87 = 'W', 78 = 'N', 76 = 'L') and the version
// with string.match(v, '^..(%d+):'), so the header stays plain text while
// the body is sealed with the header as additional data.
const (
	formatV1 byte = 0x01

	// KindValue is a cached body, sealed with AES-256-GCM: a row that
	// Postgres committed at that version (written by a fill or a
	// write-through).
	KindValue byte = 'V'
	// KindWriteBehind ('W', byte 87) is a value written behind: a body
	// sealed exactly as KindValue, written by a write-behind ingest before
	// its row reaches Postgres (the stream carries the same bytes). Every
	// reader and every script treats it as a real value, with two
	// differences: reads report it as served by the write-behind pattern,
	// and a KindValue of the same version replaces it (that value is a
	// committed row, the W only an accepted one, which may still lose to an
	// existing row). The flush leaves a W in place when its row is the one
	// Postgres inserted; from then on it is that row, until a write-through
	// (version 2 and up) or a tombstone replaces it or it expires.
	KindWriteBehind byte = 'W'
	// KindNegative is "not found" (version 0) or a tombstone (the deleted version).
	KindNegative byte = 'N'
	// KindLease marks a fill in progress; its payload is the filler's token.
	KindLease byte = 'L'
)

// Entry is a decoded cache entry. Body is set for KindValue and
// KindWriteBehind (the plaintext body), Token for KindLease.
type Entry struct {
	Kind    byte
	Version int64
	Body    []byte
	Token   string
}

// Codec writes and reads the one entry format of the service. Every value
// body is encrypted and authenticated with AES-256-GCM under a random
// 96-bit nonce, with the entry header as additional data, so sensitive
// fields never reach Redis in plain text and a header (kind or version)
// cannot be swapped onto another body. A Codec is safe for concurrent use.
type Codec struct {
	aead cipher.AEAD // nonce-prepending GCM: Seal writes nonce ‖ ciphertext ‖ tag
}

// NewCodec returns a Codec sealing with the 32-byte AES-256 key.
func NewCodec(key []byte) (*Codec, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("cache encryption key: want 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cache encryption key: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("cache encryption key: %w", err)
	}
	return &Codec{aead: aead}, nil
}

// NewCodecFromEnv builds the Codec from CACHE_ENCRYPTION_KEY (standard
// base64 of 32 bytes). When b64 is empty it generates an ephemeral random
// key and logs a warning (never the key): entries written by this process
// are then unreadable by any other, which is safe for the cache (they
// decode as misses) but wastes it, and write-behind entries pending at a
// restart cannot be decrypted and end in the dead-letter stream.
func NewCodecFromEnv(b64 string, log *slog.Logger) (*Codec, error) {
	if b64 == "" {
		if log == nil {
			log = slog.Default()
		}
		log.Warn("CACHE_ENCRYPTION_KEY is not set: using an ephemeral random key; cache entries will not be shared across processes or restarts, and write-behind entries pending at a restart cannot be decrypted by the next process and will be dead-lettered; set a stable key wherever bulk ingest is used")
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate cache encryption key: %w", err)
		}
		return NewCodec(key)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("CACHE_ENCRYPTION_KEY: not base64: %w", err)
	}
	c, err := NewCodec(key)
	if err != nil {
		return nil, fmt.Errorf("CACHE_ENCRYPTION_KEY: %w", err)
	}
	return c, nil
}

// appendHeader appends "[0x01][kind]{version}:".
func appendHeader(dst []byte, kind byte, version int64) []byte {
	dst = append(dst, formatV1, kind)
	dst = strconv.AppendInt(dst, version, 10)
	return append(dst, ':')
}

// Value returns a value entry: the header, then body sealed with the
// header as additional data.
func (c *Codec) Value(version int64, body []byte) []byte {
	return c.seal(KindValue, version, body)
}

// WrittenBehind returns a value entry of kind KindWriteBehind: the same
// sealing as Value, under a header whose kind byte is 'W' (authenticated
// with the body, so the kind cannot be swapped).
func (c *Codec) WrittenBehind(version int64, body []byte) []byte {
	return c.seal(KindWriteBehind, version, body)
}

// seal returns the header of kind and version, then body sealed with the
// header as additional data.
func (c *Codec) seal(kind byte, version int64, body []byte) []byte {
	out := make([]byte, 0, 2+20+1+c.aead.Overhead()+len(body))
	out = appendHeader(out, kind, version)
	return c.aead.Seal(out, nil, body, out)
}

// IsValue reports whether e holds a real value (KindValue or
// KindWriteBehind), as opposed to a negative entry, a tombstone or a lease.
func (e Entry) IsValue() bool { return e.Kind == KindValue || e.Kind == KindWriteBehind }

// Negative returns a negative entry: "not found" for version 0, a
// tombstone of the deleted version otherwise.
func (c *Codec) Negative(version int64) []byte {
	return appendHeader(make([]byte, 0, 24), KindNegative, version)
}

// Lease returns a lease entry holding token.
func (c *Codec) Lease(token string) []byte {
	return append(appendHeader(make([]byte, 0, 4+len(token)), KindLease, 0), token...)
}

// Decode parses raw. Every failure wraps ErrUndecodable.
func (c *Codec) Decode(raw []byte) (Entry, error) {
	if len(raw) < 4 {
		return Entry{}, fmt.Errorf("%w: %d bytes", ErrUndecodable, len(raw))
	}
	if raw[0] != formatV1 {
		return Entry{}, fmt.Errorf("%w: format byte %#x", ErrUndecodable, raw[0])
	}
	kind := raw[1]
	i := 2
	for i < len(raw) && i < 2+19 && raw[i] >= '0' && raw[i] <= '9' {
		i++
	}
	if i == 2 || i >= len(raw) || raw[i] != ':' {
		return Entry{}, fmt.Errorf("%w: malformed header", ErrUndecodable)
	}
	version, err := strconv.ParseInt(string(raw[2:i]), 10, 64)
	if err != nil {
		return Entry{}, fmt.Errorf("%w: version: %v", ErrUndecodable, err)
	}
	header, payload := raw[:i+1], raw[i+1:]
	e := Entry{Kind: kind, Version: version}
	switch kind {
	case KindValue, KindWriteBehind:
		body, err := c.aead.Open(nil, nil, payload, header)
		if err != nil {
			return Entry{}, fmt.Errorf("%w: %v", ErrUndecodable, err)
		}
		e.Body = body
	case KindNegative:
		if len(payload) != 0 {
			return Entry{}, fmt.Errorf("%w: negative entry with payload", ErrUndecodable)
		}
	case KindLease:
		e.Token = string(payload)
	default:
		return Entry{}, fmt.Errorf("%w: kind %q", ErrUndecodable, kind)
	}
	return e, nil
}
