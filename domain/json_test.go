package domain

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestAppendPythonFloat(t *testing.T) {
	cases := map[float64]string{
		1: "1.0", 0.5: "0.5", 0: "0.0", 0.1: "0.1", 0.0001: "0.0001", 0.00001: "1e-05",
		1.5e-7: "1.5e-07", 1e15: "1000000000000000.0", 1e16: "1e+16", 123.456: "123.456",
		-2.5: "-2.5", 0.30000000000000004: "0.30000000000000004", 1.0 / 3: "0.3333333333333333",
	}
	for in, want := range cases {
		if got := string(AppendPythonFloat(nil, in)); got != want {
			t.Errorf("AppendPythonFloat(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestAppendPydanticFloat: response numbers as pydantic-core writes them
// (the contract's examples), which differ from repr below 1e-4 and in the
// exponent's padding; and the encoders of the response models use it.
func TestAppendPydanticFloat(t *testing.T) {
	cases := map[float64]string{
		0.00001: "0.00001", 1e-7: "1e-7", 2.5e-6: "2.5e-6", 0.0001: "0.0001", 1e16: "1e+16",
		1.0: "1.0", 0.87: "0.87", 0: "0.0", 0.000012345: "0.000012345", 1.5e-5: "0.000015",
		9.99e-6: "9.99e-6", 1e15: "1000000000000000.0", 1.5e17: "1.5e+17", 1e100: "1e+100",
		-3e-9: "-3e-9", 1.0 / 3: "0.3333333333333333",
	}
	for in, want := range cases {
		if got := string(AppendPydanticFloat(nil, in)); got != want {
			t.Errorf("AppendPydanticFloat(%v) = %q, want %q", in, got, want)
		}
	}
	score, avg := 0.00001, 2.5e-6
	a := Analysis{Score: &score, Tags: []string{}}
	if got := string(a.AppendJSON(nil)); !strings.Contains(got, `"score":0.00001,`) {
		t.Errorf("analysis score: %s", got)
	}
	st := Stats{AvgScore: &avg}
	if got := string(st.AppendJSON(nil)); !strings.Contains(got, `"avg_score":2.5e-6,`) {
		t.Errorf("stats avg_score: %s", got)
	}
}

func TestAppendJSONString(t *testing.T) {
	cases := map[string]string{
		`a"b\c`:         `"a\"b\\c"`,
		"\n\r\t\b\f":    `"\n\r\t\b\f"`,
		"\x01\x1f\x7f":  "\"\\u0001\\u001f\x7f\"",
		"héllo \u2028✓": "\"héllo \u2028✓\"",
		"<&>":           `"<&>"`,
	}
	for in, want := range cases {
		if got := string(AppendJSONString(nil, in)); got != want {
			t.Errorf("AppendJSONString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAppendJSONTime(t *testing.T) {
	ts := time.Date(2026, 11, 26, 10, 20, 30, 123456789, time.UTC)
	if got := string(AppendJSONTime(nil, ts)); got != `"2026-11-26T10:20:30.123456Z"` {
		t.Errorf("got %s", got)
	}
	if got := string(AppendJSONTime(nil, ts.Truncate(time.Second))); got != `"2026-11-26T10:20:30Z"` {
		t.Errorf("got %s", got)
	}
	if got := string(AppendJSONTime(nil, time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC))); got != `"2026-01-02T03:04:05.120000Z"` {
		t.Errorf("got %s", got)
	}
}

func TestAppendUUID(t *testing.T) {
	id := uuid.New()
	if got := string(AppendUUID(nil, id)); got != id.String() {
		t.Fatalf("%s != %s", got, id)
	}
}

func TestAppendJSONDoesNotAllocateIntoAReusedBuffer(t *testing.T) {
	score, summary := 0.123456789, "s"
	a := Analysis{Title: "t", Status: StatusPending, Score: &score, Summary: &summary, Tags: []string{"a", "b"}}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = a.AppendJSON(buf[:0]) }); n != 0 {
		t.Fatalf("AppendJSON allocates %v times per call", n)
	}
}
