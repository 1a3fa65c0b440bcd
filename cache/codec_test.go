package cache

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func mustCodec(tb testing.TB) *Codec {
	tb.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	c, err := NewCodec(key)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestCodecRoundTrip(t *testing.T) {
	c := mustCodec(t)
	body := []byte(`{"id":"x","notes":"secret ✓"}`)

	v := c.Value(42, body)
	if !bytes.HasPrefix(v, []byte("\x01V42:")) {
		t.Fatalf("value header: %q", v[:8])
	}
	if bytes.Contains(v, []byte("secret")) {
		t.Fatal("value holds the plaintext")
	}
	e, err := c.Decode(v)
	if err != nil || e.Kind != KindValue || e.Version != 42 || !bytes.Equal(e.Body, body) {
		t.Fatalf("value: %+v, %v", e, err)
	}

	w := c.WrittenBehind(1, body)
	if !bytes.HasPrefix(w, []byte("\x01W1:")) || bytes.Contains(w, []byte("secret")) {
		t.Fatalf("written-behind entry: %q", w[:8])
	}
	e, err = c.Decode(w)
	if err != nil || e.Kind != KindWriteBehind || e.Version != 1 || !bytes.Equal(e.Body, body) || !e.IsValue() {
		t.Fatalf("written-behind: %+v, %v", e, err)
	}
	// The kind is authenticated with the body: W relabelled V does not open.
	swapped := bytes.Clone(w)
	swapped[1] = KindValue
	if _, err := c.Decode(swapped); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("W relabelled as V decoded: %v", err)
	}

	e, err = c.Decode(c.Negative(7))
	if err != nil || e.Kind != KindNegative || e.Version != 7 || e.Body != nil {
		t.Fatalf("negative: %+v, %v", e, err)
	}
	if got := string(c.Negative(0)); got != "\x01N0:" {
		t.Fatalf("negative bytes %q", got)
	}

	e, err = c.Decode(c.Lease("tok"))
	if err != nil || e.Kind != KindLease || e.Token != "tok" || e.Version != 0 {
		t.Fatalf("lease: %+v, %v", e, err)
	}

	// Two seals of one body differ (random nonce) and both open.
	if bytes.Equal(c.Value(1, body), c.Value(1, body)) {
		t.Fatal("nonce reused")
	}
}

func TestCodecRejects(t *testing.T) {
	c := mustCodec(t)
	v := c.Value(3, []byte("body"))
	swapped := append([]byte("\x01V4:"), v[len("\x01V3:"):]...) // header of another version
	flipped := bytes.Clone(v)
	flipped[len(flipped)-1] ^= 1
	cases := map[string][]byte{
		"other key":      mustCodec(t).Value(3, []byte("body")),
		"swapped header": swapped,
		"flipped bit":    flipped,
		"unknown format": append([]byte{0x02}, v[1:]...),
		"unknown kind":   []byte("\x01X3:abc"),
		"no version":     []byte("\x01V:abc"),
		"no colon":       []byte("\x01V33"),
		"short":          []byte("\x01V"),
		"empty":          nil,
		"plain json":     []byte(`{"id":1}`),
		"huge version":   []byte("\x01N99999999999999999999:"),
		"negative body":  []byte("\x01N3:x"),
		"no key id":      []byte("\x01V3:ab"),
	}
	for name, raw := range cases {
		if _, err := c.Decode(raw); !errors.Is(err, ErrUndecodable) {
			t.Errorf("%s: err = %v, want ErrUndecodable", name, err)
		}
	}
}

func TestNewCodecFromEnv(t *testing.T) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	b64 := base64.StdEncoding.EncodeToString(key)
	c1, err := NewCodecFromEnv(b64, nil)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := NewCodec(key)
	if _, err := c2.Decode(c1.Value(1, []byte("x"))); err != nil {
		t.Fatalf("same key must open: %v", err)
	}
	if _, err := mustCodec(t).Decode(c1.Value(1, []byte("x"))); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("another key opened: %v", err)
	}

	for _, bad := range []string{"not base64!", base64.StdEncoding.EncodeToString(key[:16]), b64 + ",", b64 + "," + b64} {
		_, err := NewCodecFromEnv(bad, nil)
		if err == nil {
			t.Errorf("NewCodecFromEnv(%q) accepted", bad)
		} else if strings.Contains(err.Error(), b64) {
			t.Errorf("error shows the key: %v", err)
		}
	}
}

// Two processes started without CACHE_ENCRYPTION_KEY (development) share the
// published development key: each reads what the other wrote, and each logs
// that the key is not secret.
func TestNewCodecFromEnvDevelopmentKeyIsShared(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := NewCodecFromEnv("", log)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewCodecFromEnv("", log)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]*Codec{{a, b}, {b, a}} {
		e, err := pair[1].Decode(pair[0].Value(3, []byte("shared")))
		if err != nil || string(e.Body) != "shared" {
			t.Fatalf("development codecs do not read each other: %+v %v", e, err)
		}
	}
	out := logs.String()
	if strings.Count(out, "level=WARN") != 2 || !strings.Contains(out, "CACHE_ENCRYPTION_KEY") || !strings.Contains(out, "NOT secret") {
		t.Fatalf("want a warning per codec that the key is not secret: %q", out)
	}
	if strings.Contains(out, DevelopmentKey) {
		t.Fatal("the key is logged")
	}
}

// A key is rotated by deploying "new,old": entries sealed by the old key
// still open (no wipe, no undecodable entries), new entries are sealed with
// the new key and carry its id, and once the old key is dropped they still
// open while the old entries no longer do.
func TestCodecKeyRotation(t *testing.T) {
	oldKey, newKey := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(oldKey)
	_, _ = rand.Read(newKey)
	oldB64, newB64 := base64.StdEncoding.EncodeToString(oldKey), base64.StdEncoding.EncodeToString(newKey)

	before, err := NewCodecFromEnv(oldB64, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldValue := before.Value(5, []byte("sealed before"))
	oldW := before.WrittenBehind(1, []byte("pending in the stream"))

	during, err := NewCodecFromEnv(newB64+", "+oldB64, nil)
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]string{string(oldValue): "sealed before", string(oldW): "pending in the stream"} {
		e, err := during.Decode([]byte(raw))
		if err != nil || string(e.Body) != want {
			t.Fatalf("old entry after rotation: %+v %v", e, err)
		}
	}
	newValue := during.Value(6, []byte("sealed after"))
	if _, err := before.Decode(newValue); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("rotated codec still seals with the old key: %v", err)
	}

	after, err := NewCodecFromEnv(newB64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := after.Decode(newValue); err != nil || string(e.Body) != "sealed after" {
		t.Fatalf("new entry with the new key alone: %+v %v", e, err)
	}
	if _, err := after.Decode(oldValue); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("old key dropped but its entry opened: %v", err)
	}
}

// The key id after the header names the sealing key, so Decode opens once
// with that key: an entry relabelled with another configured key's id does
// not open, though that key is configured too.
func TestCodecKeyIDSelectsTheKey(t *testing.T) {
	k1, k2 := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(k1)
	_, _ = rand.Read(k2)
	c, err := NewCodec(k1, k2)
	if err != nil {
		t.Fatal(err)
	}
	v := c.Value(9, []byte("body"))
	hdr := len("\x01V9:")
	id1, id2 := keyID(k1), keyID(k2)
	if !bytes.Equal(v[hdr:hdr+keyIDLen], id1[:]) {
		t.Fatalf("entry does not carry the sealing key's id: %x", v[hdr:hdr+keyIDLen])
	}
	relabelled := bytes.Clone(v)
	copy(relabelled[hdr:], id2[:])
	if _, err := c.Decode(relabelled); !errors.Is(err, ErrUndecodable) {
		t.Fatalf("relabelled entry: %v", err)
	}
	unknown := bytes.Clone(v)
	unknown[hdr] ^= 0xff
	if _, err := c.Decode(unknown); !errors.Is(err, ErrUndecodable) || !strings.Contains(err.Error(), "not in CACHE_ENCRYPTION_KEY") {
		t.Fatalf("unknown key id: %v", err)
	}
}
