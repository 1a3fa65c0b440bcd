package cache

import (
	"encoding/json"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
)

type zzJSON struct {
	ID        uuid.UUID     `json:"id"`
	OwnerID   uuid.UUID     `json:"owner_id"`
	URL       string        `json:"url"`
	Title     string        `json:"title"`
	Status    domain.Status `json:"status"`
	Summary   *string       `json:"summary"`
	Score     *float64      `json:"score"`
	Tags      []string      `json:"tags"`
	Notes     *string       `json:"notes"`
	Version   int64         `json:"version"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
}

func zzBody() []byte {
	a := wbBenchItems(1)[0]
	a.Version, a.CreatedAt, a.UpdatedAt = 1, time.Now().UTC(), time.Now().UTC()
	return a.AppendJSON(nil)
}

func BenchmarkZZStd(b *testing.B) {
	body := zzBody()
	b.Log(string(body))
	for b.Loop() {
		var j zzJSON
		if err := json.Unmarshal(body, &j); err != nil {
			b.Fatal(err)
		}
	}
}
func BenchmarkZZGoccy(b *testing.B) {
	body := zzBody()
	for b.Loop() {
		var j zzJSON
		if err := gojson.Unmarshal(body, &j); err != nil {
			b.Fatal(err)
		}
	}
}
func BenchmarkZZDomain(b *testing.B) {
	body := zzBody()
	for b.Loop() {
		if _, err := domain.ParseAnalysisJSON(body); err != nil {
			b.Fatal(err)
		}
	}
}
