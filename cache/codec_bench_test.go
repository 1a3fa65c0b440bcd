package cache

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
)

// Run: go test -run '^$' -bench 'Encode|Seal|Open' -benchmem ./cache/

// benchPage is a full default page (20 analyses) with every field set.
func benchPage() *domain.Page {
	summary, notes, score := "A long enough summary of the page that was analysed, with ünïcode.", "private notes", 0.73
	now := time.Date(2026, 11, 26, 10, 20, 30, 123456000, time.UTC)
	p := &domain.Page{Count: 1234}
	for i := range domain.DefaultPageLimit {
		p.Data = append(p.Data, domain.Analysis{
			ID: uuid.New(), OwnerID: uuid.New(), URL: "https://example.com/articles/" + strconv.Itoa(i),
			Title: "Analysis number " + strconv.Itoa(i), Status: domain.StatusCompleted,
			Summary: &summary, Score: &score, Tags: []string{"go", "redis", "postgres"}, Notes: &notes,
			Version: int64(i + 1), CreatedAt: now, UpdatedAt: now,
		})
	}
	return p
}

// publicJSON is AnalysisPublic as struct tags: the equivalent the reflection
// encoders get (their time and float formats differ slightly from FastAPI's).
type publicJSON struct {
	ID        uuid.UUID `json:"id"`
	OwnerID   uuid.UUID `json:"owner_id"`
	URL       string    `json:"url"`
	Title     string    `json:"title"`
	Status    string    `json:"status"`
	Summary   *string   `json:"summary"`
	Score     *float64  `json:"score"`
	Tags      []string  `json:"tags"`
	Notes     *string   `json:"notes"`
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

type pageJSON struct {
	Data  []publicJSON `json:"data"`
	Count int64        `json:"count"`
}

func toPageJSON(p *domain.Page) pageJSON {
	out := pageJSON{Count: p.Count}
	for _, a := range p.Data {
		out.Data = append(out.Data, publicJSON{a.ID, a.OwnerID, a.URL, a.Title, string(a.Status), a.Summary, a.Score, a.Tags, a.Notes, a.Version, a.CreatedAt, a.UpdatedAt})
	}
	return out
}

func BenchmarkEncodePageAppendJSON(b *testing.B) {
	p := benchPage()
	b.SetBytes(int64(len(p.AppendJSON(nil))))
	b.ReportAllocs()
	for b.Loop() {
		_ = p.AppendJSON(nil)
	}
}

// BenchmarkEncodePageAppendJSONReuse appends into a reused buffer, the way a
// pooled response buffer would: what is left is the encoder's own cost.
func BenchmarkEncodePageAppendJSONReuse(b *testing.B) {
	p := benchPage()
	buf := p.AppendJSON(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = p.AppendJSON(buf[:0])
	}
}

func BenchmarkEncodePageEncodingJSON(b *testing.B) {
	p := toPageJSON(benchPage())
	out, _ := json.Marshal(p)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePageGoccyJSON(b *testing.B) {
	p := toPageJSON(benchPage())
	out, _ := gojson.Marshal(p)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gojson.Marshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBodies() map[string][]byte {
	p := benchPage()
	return map[string][]byte{"analysis": p.Data[0].AppendJSON(nil), "page": p.AppendJSON(nil)}
}

func BenchmarkSeal(b *testing.B) {
	c := mustCodec(b)
	for name, body := range benchBodies() {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				_ = c.Value(7, body)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	c := mustCodec(b)
	for name, body := range benchBodies() {
		raw := c.Value(7, body)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Decode(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBenchEquivalentStructs keeps the benchmark honest: the reflection
// encoders are given the same data and produce a body of comparable size.
func TestBenchEquivalentStructs(t *testing.T) {
	p := benchPage()
	ours := p.AppendJSON(nil)
	std, _ := json.Marshal(toPageJSON(p))
	var back pageJSON
	if err := json.Unmarshal(ours, &back); err != nil {
		t.Fatalf("AppendJSON output is not JSON: %v", err)
	}
	if len(back.Data) != len(p.Data) || back.Count != p.Count || back.Data[3].ID != p.Data[3].ID || *back.Data[0].Score != *p.Data[0].Score {
		t.Fatalf("round trip lost data: %+v", back.Data[0])
	}
	if d := len(std) - len(ours); d < -len(ours)/10 || d > len(ours)/10 {
		t.Fatalf("bodies differ in size: %d vs %d", len(ours), len(std))
	}
}
