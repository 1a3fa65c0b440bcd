package api

import (
	"testing"
	"unicode"

	"github.com/analysis-cache/service/domain"
)

// TestRustPatternClasses: \S is every character outside Unicode's
// White_Space, as Rust's regex crate reads it (Go's own \S is ASCII).
func TestRustPatternClasses(t *testing.T) {
	re, err := rustPattern(`^\S$`)
	if err != nil {
		t.Fatal(err)
	}
	for r := rune(0); r <= 0x10000; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		if got, want := re.MatchString(string(r)), !unicode.Is(unicode.White_Space, r); got != want {
			t.Errorf(`\S on U+%04X = %v, want %v`, r, got, want)
		}
	}
	space, err := rustPattern(`^[\s]+$`)
	if err != nil {
		t.Fatal(err)
	}
	if !space.MatchString("\t\v\u0085\u00a0\u2028\u3000") || space.MatchString("\u200b") {
		t.Error(`[\s] is not the White_Space property`)
	}
	digit, err := rustPattern(`^\d+$`)
	if err != nil {
		t.Fatal(err)
	}
	if !digit.MatchString("12٣") { // Arabic-Indic three is a Unicode digit
		t.Error(`\d is not Unicode's Nd`)
	}
}

// TestRustPatternURL: the declared url pattern, compiled, decides as
// pydantic-core does on the inputs where Go's and Rust's readings differ.
func TestRustPatternURL(t *testing.T) {
	re, err := rustPattern(domain.URLField.Pattern)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]bool{
		"https://a":          true,
		"http://a/b?c=d":     true,
		"http://":            false,
		"ftp://a":            false,
		"https://a b":        false,
		"https://a\u00a0b":   false, // no-break space: White_Space
		"https://a\u0085b":   false, // next line
		"https://a\u2028":    false, // line separator
		"https://a\vb":       false,
		"https://a\n":        false, // $ is the end of the text, and \n is a space anyway
		"https://a\u200bb":   true,  // zero-width space is not White_Space
		"HTTPS://a":          false,
		"https://é.example/": true,
	} {
		if got := re.MatchString(in); got != want {
			t.Errorf("%q: match %v, want %v", in, got, want)
		}
	}
}

func TestRustPatternRefusesWhatGoReadsDifferently(t *testing.T) {
	for _, p := range []string{`\w+`, `\bx`, `[\S]`, `[\D]`, `[a[b]]`, `[a&&b]`, `[a--b]`, `(`} {
		if _, err := rustPattern(p); err == nil {
			t.Errorf("%s: compiled, want an error", p)
		}
	}
	for _, p := range []string{`[[:alpha:]]+`, `[]a]`, `[^]a]`, `a\.b`, `\p{L}`, `\x{41}`} {
		if _, err := rustPattern(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}
