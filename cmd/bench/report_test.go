package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

func sampleReport() *report {
	r := &report{Machine: "Test CPU, 2 cores", Date: "2026-11-26 10:00 UTC", Command: "make bench", Plan: quickPlan}
	r.Plan.conns = 32
	r.add(row{Name: rowCeilRedis, Rate: 40000, Unit: "req/s", P50: 500 * time.Microsecond, P99: 2 * time.Millisecond})
	r.add(row{Name: rowCachedGet, Rate: 30000, Unit: "req/s", P50: 700 * time.Microsecond, P99: 3 * time.Millisecond,
		Vs: rowCeilRedis, Target: "≥ 0.9× rate", HasTarget: true, Met: false, Note: "X-Cache HIT 100.0% | piped"})
	r.add(row{Name: "stampede <500>", P50: 80 * time.Millisecond, P99: 95 * time.Millisecond,
		Ratio: 1.1, RatioOf: "p99 / one computation", Target: "1 computation", HasTarget: true, Met: true})
	return r
}

func TestRatioNamesTheCeiling(t *testing.T) {
	r := sampleReport()
	if got, want := r.ratio(r.Rows[1]), "0.75× gin + one go-redis GET"; got != want {
		t.Errorf("ratio = %q, want %q", got, want)
	}
	if got := r.ratio(r.Rows[0]); got != "ceiling" {
		t.Errorf("ceiling ratio = %q", got)
	}
	if got, want := r.ratio(r.Rows[2]), "1.10 (p99 / one computation)"; got != want {
		t.Errorf("own ratio = %q, want %q", got, want)
	}
	if got := r.Rows[1].verdict(); !strings.HasPrefix(got, "MISSED") {
		t.Errorf("verdict of a missed target = %q", got)
	}
}

func TestMarkdownHasEveryRowAndEscapesPipes(t *testing.T) {
	md := string(sampleReport().Markdown())
	for _, want := range []string{"| " + rowCachedGet + " | 30,000 req/s | 0.70 ms | 3.00 ms | 0.75× gin + one go-redis GET | MISSED", `HIT 100.0% \| piped`, "Test CPU, 2 cores", "benchmarks.svg"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// The chart is well-formed XML (names are escaped) with one bar per figure.
func TestSVGIsWellFormed(t *testing.T) {
	svg := sampleReport().SVG()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	bars := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("invalid SVG: %v\n%s", err, svg)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == "rect" {
			bars++
		}
	}
	// background + 2 rate bars + 3 latency bars
	if bars != 6 {
		t.Errorf("rects = %d, want 6", bars)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999.6: "1,000", 1234567: "1,234,567", 100000: "100,000"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

// Write rows name the write ceiling in their ratio; run-wide notes and the
// CPU profiles of missed targets reach both the terminal and the markdown.
func TestWriteRatioNotesAndProfiles(t *testing.T) {
	r := sampleReport()
	r.add(row{Name: rowCeilWrite, Rate: 4000, Unit: "req/s"})
	patch := r.add(row{Name: rowPatch, Rate: 2600, Unit: "req/s", Vs: rowCeilWrite})
	r.Load = [2]string{"9.46", "11.15"}
	r.Notes = []string{"Invalidation log (cache_outbox) under the write load: peak 21,000 rows"}
	r.Profiles = []cpuProfile{{Scenario: "PATCH", Path: "bin/bench/cpu-patch.prof", Top: "Showing nodes accounting for 1s\n  flat  flat%"}}
	if got, want := r.ratio(patch), "0.65× gin + pgx UPDATE … RETURNING + Redis SET"; got != want {
		t.Errorf("ratio = %q, want %q", got, want)
	}
	md, term := string(r.Markdown()), r.Terminal()
	for _, want := range []string{"- Invalidation log (cache_outbox) under the write load: peak 21,000 rows",
		"- Machine: Test CPU, 2 cores; 1-minute load average 9.46 at the start, 11.15 at the end.",
		"## Server CPU profile during the PATCH", "go tool pprof bin/bench/cpu-patch.prof", "Showing nodes accounting for 1s"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	for _, want := range []string{"  Invalidation log (cache_outbox)", "load average 9.46 at the start, 11.15 at the end", "server CPU profile during PATCH (bin/bench/cpu-patch.prof)", "Showing nodes"} {
		if !strings.Contains(term, want) {
			t.Errorf("terminal lacks %q", want)
		}
	}
}
