package api

import (
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"
)

// parseUUID parses s as Pydantic v2 does (the Rust uuid crate's
// Uuid::parse_str): 32 hex digits, the hyphenated 8-4-4-4-12 form, the
// braced form {…} and the urn:uuid: form, in either case. On failure it
// returns the crate's error text, which Pydantic puts in msg and ctx.error.
func parseUUID(s string) (uuid.UUID, string) {
	var body string
	switch {
	case len(s) == 32:
		if id, ok := parseSimpleUUID(s); ok {
			return id, ""
		}
	case len(s) == 36:
		body = s
	case len(s) == 38 && s[0] == '{' && s[37] == '}':
		body = s[1:37]
	case len(s) == 45 && s[:9] == "urn:uuid:":
		body = s[9:]
	}
	if body != "" {
		if id, ok := parseHyphenatedUUID(body); ok {
			return id, ""
		}
	}
	return uuid.UUID{}, uuidErrorText(s)
}

func parseSimpleUUID(s string) (uuid.UUID, bool) {
	var id uuid.UUID
	for i := 0; i < 16; i++ {
		hi, ok1 := hexVal(s[2*i])
		lo, ok2 := hexVal(s[2*i+1])
		if !ok1 || !ok2 {
			return id, false
		}
		id[i] = hi<<4 | lo
	}
	return id, true
}

func parseHyphenatedUUID(s string) (uuid.UUID, bool) {
	if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return uuid.UUID{}, false
	}
	var simple [32]byte
	n := 0
	for i := 0; i < 36; i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			continue
		}
		simple[n] = s[i]
		n++
	}
	return parseSimpleUUID(string(simple[:]))
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// uuidErrorText reproduces uuid::InvalidUuid::into_err and the Display of
// its error kinds: the first bad character (1-based byte index, counting a
// stripped "{" or "urn:uuid:"), else the simple length, the group count or
// the first group with a wrong length.
func uuidErrorText(input string) string {
	s, offset, simple := input, 0, true
	switch {
	case len(input) >= 2 && input[0] == '{' && input[len(input)-1] == '}':
		s, offset, simple = input[1:len(input)-1], 1, false
	case len(input) >= 9 && input[:9] == "urn:uuid:":
		s, offset, simple = input[9:], 9, false
	}
	hyphens := 0
	var bounds [4]int
	for i, r := range s {
		if r >= utf8.RuneSelf || r == utf8.RuneError {
			return "invalid character: found `" + string(r) + "` at " + strconv.Itoa(i+offset+1)
		}
		c := byte(r)
		if c == '-' {
			if hyphens < 4 {
				bounds[hyphens] = i
			}
			hyphens++
			continue
		}
		if _, ok := hexVal(c); !ok {
			return "invalid character: found `" + string(r) + "` at " + strconv.Itoa(i+offset+1)
		}
	}
	if hyphens == 0 && simple {
		return "invalid length: expected length 32 for simple format, found " + strconv.Itoa(len(input))
	}
	if hyphens != 4 {
		return "invalid group count: expected 5, found " + strconv.Itoa(hyphens+1)
	}
	starts := [5]int{0, 9, 14, 19, 24}
	expected := [5]int{8, 4, 4, 4, 12}
	for g := 0; g < 4; g++ {
		if bounds[g] != starts[g+1]-1 {
			return "invalid group length in group " + strconv.Itoa(g) + ": expected " +
				strconv.Itoa(expected[g]) + ", found " + strconv.Itoa(bounds[g]-starts[g])
		}
	}
	return "invalid group length in group 4: expected 12, found " + strconv.Itoa(len(input)-starts[4])
}
