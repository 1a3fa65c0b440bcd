package api

import "testing"

// The tables below are CPython 3.13's json.loads / json.dumps outputs for
// the same inputs (generated with /root/.pyenv/versions/3.13.0, then pasted).

var pythonJSONErrors = []struct {
	in, msg string
	pos     int
}{
	{"\"\\u12\"", "Invalid \\uXXXX escape", 2},
	{"\"\\u12zz\"", "Invalid \\uXXXX escape", 2},
	{"\"\\ud800\\u12zz\"", "Invalid \\uXXXX escape", 8},
	{"\"\\x\"", "Invalid \\escape", 1},
	{"{\"a\":1,}", "Illegal trailing comma before end of object", 6},
	{"[1,]", "Illegal trailing comma before end of array", 2},
	{"{\"a\" 1}", "Expecting ':' delimiter", 5},
	{"{a:1}", "Expecting property name enclosed in double quotes", 1},
	{"[1 2]", "Expecting ',' delimiter", 3},
	{"01", "Extra data", 1},
	{"1.", "Extra data", 1},
	{"-", "Expecting value", 0},
	{"\"abc", "Unterminated string starting at", 0},
	{"\"a\nb\"", "Invalid control character at", 2},
	{"{\"a\":}", "Expecting value", 5},
	{"  ", "Expecting value", 2},
	{"tru", "Expecting value", 0},
	{"{\"\u00e9\":1 x", "Expecting ',' delimiter", 7},
	{"[1,2", "Expecting ',' delimiter", 4},
	{"{", "Expecting property name enclosed in double quotes", 1},
	{"{\"a\":1", "Expecting ',' delimiter", 6},
	{"\"\\", "Unterminated string starting at", 0},
	{"nul", "Expecting value", 0},
	{"1e", "Extra data", 1},
	{"1e+", "Extra data", 1},
	{"{\"a\":1}x", "Extra data", 7},
	{"[", "Expecting value", 1},
	{"{\"\u00fc\\\"\":\"\u00e9\u4e2d\", \"k\"}", "Expecting ':' delimiter", 16},
	{"[1,\n 2,,3]", "Expecting value", 7},
	{"{\"a\":-}", "Expecting value", 5},
	{"{\"a\":[true,false,null,NaN x]}", "Expecting ',' delimiter", 26},
	{"\"\t\"", "Invalid control character at", 1},
	{"[-01]", "Expecting ',' delimiter", 3},
	{"{\"a\":1 , \"b\" :2 ,}", "Illegal trailing comma before end of object", 16},
	{"[]]", "Extra data", 2},
	{"{}{}", "Extra data", 2},
	{"\n\r\t 7 \n x", "Extra data", 8},
}
var pythonJSONEchoes = []struct {
	in, out string
	ok      bool
}{
	{"{\"b\":1,\"a\":[1.0,2.50,-0,1e2,1E-7,12345678901234567890],\"c\":{\"x\":\"\\u00e9\\ud83d\\ude00\\n\"},\"b\":2}", "{\"b\":2,\"a\":[1.0,2.5,0,100.0,1e-07,12345678901234567890],\"c\":{\"x\":\"é😀\\n\"}}", true},
	{"[NaN]", "", false},
	{" \"x\" ", "\"x\"", true},
	{"-0.0", "-0.0", true},
	{"1e400", "", false},
}

func TestParsePythonJSONErrors(t *testing.T) {
	for _, tc := range pythonJSONErrors {
		_, err, _ := parsePythonJSON(tc.in)
		if err == nil {
			t.Errorf("parse(%q): no error, want %q at %d", tc.in, tc.msg, tc.pos)
			continue
		}
		if err.msg != tc.msg || err.pos != tc.pos {
			t.Errorf("parse(%q) = %q at %d, want %q at %d", tc.in, err.msg, err.pos, tc.msg, tc.pos)
		}
	}
}

func TestParsePythonJSONEcho(t *testing.T) {
	for _, tc := range pythonJSONEchoes {
		v, err, _ := parsePythonJSON(tc.in)
		if err != nil {
			t.Fatalf("parse(%q): %v", tc.in, err.msg)
		}
		got, ok := v.appendPython(nil)
		if ok != tc.ok || (ok && string(got) != tc.out) {
			t.Errorf("echo(%q) = %s (%v), want %s (%v)", tc.in, got, ok, tc.out, tc.ok)
		}
	}
}

func TestParsePythonJSONIntDigitsLimit(t *testing.T) {
	big := make([]byte, maxIntDigits+1)
	for i := range big {
		big[i] = '1'
	}
	if _, _, tooLong := parsePythonJSON(string(big)); !tooLong {
		t.Error("an int over 4300 digits must be refused like Python's ValueError")
	}
	if _, _, tooLong := parsePythonJSON(string(big[1:])); tooLong {
		t.Error("4300 digits are allowed")
	}
}
