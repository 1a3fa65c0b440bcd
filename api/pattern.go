package api

import (
	"fmt"
	"regexp"
	"strings"
)

// rustPattern compiles a declared pattern (domain.Field.Pattern) so that it
// matches what Pydantic's engine, Rust's regex crate, matches. The two
// syntaxes agree (RE2's, $ the end of the text only) except for the Perl
// classes: Rust's \s, \S, \d and \D are Unicode, Go's ASCII. Those are
// rewritten to the Unicode classes (\s is the White_Space property: \t-\r,
// U+0085 and the separators \p{Z}; \d is \p{Nd}). \w, \W, \b and \B, whose
// Unicode word Go cannot express, are refused, and so are the class forms
// Go reads differently (a nested class, && -- ~~ set operations, \S or \D
// inside a class): a declaration using one fails at start, not silently.
func rustPattern(p string) (*regexp.Regexp, error) {
	const space = `\t\n\v\f\r\x{85}\p{Z}`
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			e := p[i]
			switch {
			case e == 's' && inClass:
				b.WriteString(space)
			case e == 's':
				b.WriteString(`[` + space + `]`)
			case e == 'S' && !inClass:
				b.WriteString(`[^` + space + `]`)
			case e == 'd':
				b.WriteString(`\p{Nd}`)
			case e == 'D':
				if inClass {
					return nil, fmt.Errorf("pattern %q: \\D inside a class", p)
				}
				b.WriteString(`\P{Nd}`)
			case strings.IndexByte("SwWbB", e) >= 0:
				return nil, fmt.Errorf("pattern %q: \\%c has no Go equivalent here", p, e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		case c == '[' && !inClass:
			inClass = true
			b.WriteByte(c)
			if i+1 < len(p) && p[i+1] == '^' {
				i++
				b.WriteByte('^')
			}
			if i+1 < len(p) && p[i+1] == ']' { // a leading ] is a literal
				i++
				b.WriteByte(']')
			}
		case c == '[' && strings.HasPrefix(p[i:], "[:"):
			end := strings.Index(p[i:], ":]")
			if end < 0 {
				return nil, fmt.Errorf("pattern %q: unterminated [: class", p)
			}
			b.WriteString(p[i : i+end+2])
			i += end + 1
		case c == '[':
			return nil, fmt.Errorf("pattern %q: nested class", p)
		case inClass && i+1 < len(p) && p[i+1] == c && strings.IndexByte("&-~", c) >= 0:
			return nil, fmt.Errorf("pattern %q: class set operation %c%c", p, c, c)
		case c == ']' && inClass:
			inClass = false
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return regexp.Compile(b.String())
}
