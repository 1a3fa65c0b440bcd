package api

import (
	"testing"

	"github.com/google/uuid"
)

func TestParseUUIDAcceptsTheUUIDCrateForms(t *testing.T) {
	want := uuid.MustParse("67e55044-10b1-426f-9247-bb680e5fe0c8")
	for _, in := range []string{
		"67e55044-10b1-426f-9247-bb680e5fe0c8",
		"67e5504410b1426f9247bb680e5fe0c8",
		"67E55044-10B1-426F-9247-BB680E5FE0C8",
		"{67e55044-10b1-426f-9247-bb680e5fe0c8}",
		"urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
	} {
		got, msg := parseUUID(in)
		if msg != "" || got != want {
			t.Errorf("parseUUID(%q) = %v, %q", in, got, msg)
		}
	}
}

// TestParseUUIDErrors follows uuid::InvalidUuid::into_err case by case.
func TestParseUUIDErrors(t *testing.T) {
	cases := map[string]string{
		"":                                       "invalid length: expected length 32 for simple format, found 0",
		"abc":                                    "invalid length: expected length 32 for simple format, found 3",
		"67e5504410b1426f9247bb680e5fe0c":        "invalid length: expected length 32 for simple format, found 31",
		"!":                                      "invalid character: found `!` at 1",
		"zzz":                                    "invalid character: found `z` at 1",
		"é":                                      "invalid character: found `é` at 1",
		"F9168C5E-CEB2-4faa-BGBF-329BF39FA1E4":   "invalid character: found `G` at 21",
		"F9168C5E-CEB2-4faa-B6BF-329BF39FA1E45":  "invalid group length in group 4: expected 12, found 13",
		"F9168C5E-CEB2-4faa-BBF-329BF39FA1E4":    "invalid group length in group 3: expected 4, found 3",
		"F9168C5E-CEB-24fa-eB6BFF32-BF39FA1E4":   "invalid group length in group 1: expected 4, found 3",
		"F9168C5E-CEB2F4faaFB6BFF329BF39FA1E4":   "invalid group count: expected 5, found 2",
		"{F9168C5E-CEB2-4faa9B6BFF329BF39FA1E41": "invalid character: found `{` at 1",
		"{00000000000000000000000000000000}":     "invalid group count: expected 5, found 1",
		"{67e55044-10b1-426f-9247-bb680e5fe0cz}": "invalid character: found `z` at 37",
		"urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0cz": "invalid character: found `z` at 45",
		"231231212212423424324323477343246663":          "invalid length: expected length 32 for simple format, found 36",
	}
	for in, want := range cases {
		if _, msg := parseUUID(in); msg != want {
			t.Errorf("parseUUID(%q) = %q, want %q", in, msg, want)
		}
	}
}

func TestLaxNumbers(t *testing.T) {
	ints := map[string]int64{"5": 5, " 7 ": 7, "+3": 3, "-0": 0, "5.00": 5, "1_000": 1000}
	for in, want := range ints {
		if got, ok := parseLaxInt(in); !ok || got != want {
			t.Errorf("parseLaxInt(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "abc", "5.5", "1e3", "_1", "1__0", "0x10", ".0", "5."} {
		if _, ok := parseLaxInt(in); ok {
			t.Errorf("parseLaxInt(%q) accepted", in)
		}
	}
	floats := map[string]float64{"0.5": 0.5, " 1 ": 1, ".5": 0.5, "5.": 5, "1e-1": 0.1, "+0.25": 0.25, "1_0": 10}
	for in, want := range floats {
		if got, ok := parseLaxFloat(in); !ok || got != want {
			t.Errorf("parseLaxFloat(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "abc", ".", "1e", "0x1p-2", "1,5"} {
		if _, ok := parseLaxFloat(in); ok {
			t.Errorf("parseLaxFloat(%q) accepted", in)
		}
	}
}
