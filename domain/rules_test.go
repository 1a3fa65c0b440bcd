package domain

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestEncoderFollowsTheFieldDeclarations: AppendJSON writes the declared
// fields, in the declared order, and null exactly for the nullable ones.
func TestEncoderFollowsTheFieldDeclarations(t *testing.T) {
	a := Analysis{ID: uuid.New(), OwnerID: uuid.New(), URL: "https://a", Title: "t", Status: StatusPending,
		Tags: []string{}, Version: 1, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	dec := json.NewDecoder(bytes.NewReader(a.AppendJSON(nil)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("first token %v, %v", tok, err)
	}
	var names, nulls []string
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		names = append(names, key.(string))
		if string(v) == "null" {
			nulls = append(nulls, key.(string))
		}
	}
	var wantNames, wantNulls []string
	for _, f := range AnalysisFields {
		wantNames = append(wantNames, f.Name)
		if f.Nullable {
			wantNulls = append(wantNulls, f.Name)
		}
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("AppendJSON keys %v, declared %v", names, wantNames)
	}
	if !slices.Equal(nulls, wantNulls) {
		t.Errorf("AppendJSON writes null for %v, declared nullable %v", nulls, wantNulls)
	}
}

func TestStatusFieldIsStatuses(t *testing.T) {
	for i, s := range Statuses {
		if StatusField.Enum[i] != string(s) || !s.Valid() {
			t.Errorf("StatusField.Enum[%d] = %q, Statuses has %q", i, StatusField.Enum[i], s)
		}
	}
	if len(StatusField.Enum) != len(Statuses) || Status("done").Valid() {
		t.Errorf("StatusField.Enum %v, Statuses %v", StatusField.Enum, Statuses)
	}
}
