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

	var logs strings.Builder
	eph, err := NewCodecFromEnv("", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "CACHE_ENCRYPTION_KEY") {
		t.Fatalf("no warning logged: %q", logs.String())
	}
	if _, err := c1.Decode(eph.Value(1, []byte("x"))); !errors.Is(err, ErrUndecodable) {
		t.Fatal("ephemeral key must differ from the configured one")
	}

	for _, bad := range []string{"not base64!", base64.StdEncoding.EncodeToString(key[:16])} {
		if _, err := NewCodecFromEnv(bad, nil); err == nil {
			t.Errorf("NewCodecFromEnv(%q) accepted", bad)
		}
	}
}
