package cache

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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
// The payload of a value (V or W) is [key id, 4 bytes][nonce ‖ ciphertext ‖
// tag]: the key id names the key that sealed it (keyID), so opening is one
// AES-GCM open with that key, whatever the number of configured keys.
//
// The Lua scripts of aside.go and writebehind_scripts.go read the kind with
// string.byte(v, 2) (86 = 'V', 87 = 'W', 78 = 'N', 76 = 'L') and the version
// with string.match(v, '^..(%d+):'), so the header stays plain text while
// the body is sealed with the header and the key id as additional data.
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

// keyIDLen is the length of the key id that follows the header of a value.
const keyIDLen = 4

// DevelopmentKey is the base64 AES-256 key NewCodecFromEnv uses when
// CACHE_ENCRYPTION_KEY is empty. It is published in the README and is not
// secret: it only lets every development process on one Redis read the
// others' entries. Production must set its own key (the service refuses to
// start there without one).
const DevelopmentKey = "YW5hbHlzaXMtY2FjaGUtZGV2LWtleS1OT1RTRUNSRVQ=" // "analysis-cache-dev-key-NOTSECRET"

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
// 96-bit nonce, with the entry header and key id as additional data, so
// sensitive fields never reach Redis in plain text and a header (kind or
// version) cannot be swapped onto another body.
//
// A Codec holds one or more keys: the first seals, every one opens. A value
// carries the id of the key that sealed it, so a key is rotated without a
// cache wipe by deploying "new,old" (every process then reads both while
// writing with the new one), then "new" once the old entries have expired.
// A Codec is safe for concurrent use.
type Codec struct {
	keys []codecKey // keys[0] seals; ids are distinct
}

// codecKey is one AES-256-GCM key and its id.
type codecKey struct {
	id   [keyIDLen]byte
	aead cipher.AEAD // nonce-prepending GCM: Seal writes nonce ‖ ciphertext ‖ tag
}

// keyID names key in entries: the first bytes of a domain-separated
// SHA-256 of the key, which say nothing usable about the key itself.
func keyID(key []byte) [keyIDLen]byte {
	h := sha256.New()
	h.Write([]byte("analysis-cache key id\x00"))
	h.Write(key)
	var id [keyIDLen]byte
	copy(id[:], h.Sum(nil))
	return id
}

// NewCodec returns a Codec sealing with the first of keys and opening with
// any of them. Every key must be 32 bytes (AES-256) and the keys distinct.
func NewCodec(keys ...[]byte) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("cache encryption key: no key")
	}
	c := &Codec{keys: make([]codecKey, 0, len(keys))}
	for n, key := range keys {
		if len(key) != 32 {
			return nil, fmt.Errorf("cache encryption key %d: want 32 bytes, got %d", n+1, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("cache encryption key %d: %w", n+1, err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("cache encryption key %d: %w", n+1, err)
		}
		id := keyID(key)
		for m, k := range c.keys {
			if k.id == id {
				return nil, fmt.Errorf("cache encryption key %d: same key id as key %d (a key listed twice?)", n+1, m+1)
			}
		}
		c.keys = append(c.keys, codecKey{id: id, aead: aead})
	}
	return c, nil
}

// ParseKeys decodes a comma-separated list of standard-base64 32-byte keys
// (the value of CACHE_ENCRYPTION_KEY). Errors say which key is wrong, by
// position, never its content.
func ParseKeys(list string) ([][]byte, error) {
	parts := strings.Split(list, ",")
	keys := make([][]byte, 0, len(parts))
	for n, p := range parts {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(p))
		switch {
		case err != nil:
			return nil, fmt.Errorf("key %d of %d: not standard base64 (openssl rand -base64 32 makes one)", n+1, len(parts))
		case len(key) != 32:
			return nil, fmt.Errorf("key %d of %d: want 32 bytes, got %d (openssl rand -base64 32 makes one)", n+1, len(parts), len(key))
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// NewCodecFromEnv builds the Codec from CACHE_ENCRYPTION_KEY: a
// comma-separated list of standard-base64 32-byte keys, the first sealing
// and every one opening. When list is empty it uses DevelopmentKey and logs
// a warning that the key is not secret (never a key): every process without
// a key then shares one, so they read each other's entries, and write-behind
// entries pending at a restart are still flushed.
func NewCodecFromEnv(list string, log *slog.Logger) (*Codec, error) {
	if list == "" {
		if log == nil {
			log = slog.Default()
		}
		log.Warn("CACHE_ENCRYPTION_KEY is not set: using the published development key, which is NOT secret; set CACHE_ENCRYPTION_KEY (openssl rand -base64 32) anywhere but a laptop")
		list = DevelopmentKey
	}
	keys, err := ParseKeys(list)
	if err != nil {
		return nil, fmt.Errorf("CACHE_ENCRYPTION_KEY: %w", err)
	}
	c, err := NewCodec(keys...)
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

// Value returns a value entry: the header, the sealing key's id, then body
// sealed with both as additional data.
func (c *Codec) Value(version int64, body []byte) []byte {
	return c.seal(KindValue, version, body)
}

// WrittenBehind returns a value entry of kind KindWriteBehind: the same
// sealing as Value, under a header whose kind byte is 'W' (authenticated
// with the body, so the kind cannot be swapped).
func (c *Codec) WrittenBehind(version int64, body []byte) []byte {
	return c.seal(KindWriteBehind, version, body)
}

// seal returns the header of kind and version and the id of the first key,
// then body sealed with that key and both as additional data.
func (c *Codec) seal(kind byte, version int64, body []byte) []byte {
	k := &c.keys[0]
	out := make([]byte, 0, 2+20+1+keyIDLen+k.aead.NonceSize()+k.aead.Overhead()+len(body))
	out = appendHeader(out, kind, version)
	out = append(out, k.id[:]...)
	return k.aead.Seal(out, nil, body, out)
}

// opener returns the AEAD of the key whose id is id, or nil.
func (c *Codec) opener(id []byte) cipher.AEAD {
	for i := range c.keys {
		if string(c.keys[i].id[:]) == string(id) {
			return c.keys[i].aead
		}
	}
	return nil
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
		if len(payload) < keyIDLen {
			return Entry{}, fmt.Errorf("%w: value without key id", ErrUndecodable)
		}
		aead := c.opener(payload[:keyIDLen])
		if aead == nil {
			return Entry{}, fmt.Errorf("%w: sealed with a key not in CACHE_ENCRYPTION_KEY (id %x)", ErrUndecodable, payload[:keyIDLen])
		}
		aad := raw[:len(header)+keyIDLen]
		body, err := aead.Open(nil, nil, payload[keyIDLen:], aad)
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
