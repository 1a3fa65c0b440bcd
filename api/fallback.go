package api

import (
	"net"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// fallback answers what gin did not route, as Starlette's Router does:
//  1. a route whose path matches (so only its method differs): 405 with the
//     Allow of the FIRST such route in declaration order;
//  2. otherwise, the path with trailing slashes removed (or one added)
//     matches a route, whatever its method: 307 to that absolute URL,
//     query kept, empty body;
//  3. otherwise 404 {"detail":"Not Found"}.
type fallback struct {
	table []fallbackRoute
}

type fallbackRoute struct {
	pattern []string // path segments; ":x" one segment, "*x" the rest
	allow   string
}

// build fills the ordered table: the API routes in declaration order, then
// the other routes gin knows (the docs), grouped by path.
func (f *fallback) build(routes []route, all gin.RoutesInfo) {
	seen := map[string]bool{}
	for _, rt := range routes {
		f.table = append(f.table, fallbackRoute{pattern: splitPath(rt.path), allow: rt.method})
		seen[rt.path] = true
	}
	var others []string
	methods := map[string][]string{}
	for _, ri := range all {
		if seen[ri.Path] {
			continue
		}
		if _, ok := methods[ri.Path]; !ok {
			others = append(others, ri.Path)
		}
		methods[ri.Path] = append(methods[ri.Path], ri.Method)
	}
	for _, p := range others {
		f.table = append(f.table, fallbackRoute{pattern: splitPath(p), allow: strings.Join(methods[p], ", ")})
	}
}

// nonEmptyParams wraps the handler of a route with path parameters: gin
// matches a parameter to an empty segment, Starlette ([^/]+) does not, so
// such a request is answered as if no route had matched it.
func (f *fallback) nonEmptyParams(next gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		for _, p := range c.Params {
			if p.Value == "" {
				f.handle(c)
				return
			}
		}
		next(c)
	}
}

func splitPath(p string) []string { return strings.Split(strings.TrimPrefix(p, "/"), "/") }

// first returns the first route whose pattern matches path.
func (f *fallback) first(path string) (fallbackRoute, bool) {
	if !strings.HasPrefix(path, "/") {
		return fallbackRoute{}, false
	}
	for _, r := range f.table {
		if matchPattern(r.pattern, path[1:]) {
			return r, true
		}
	}
	return fallbackRoute{}, false
}

// matchPattern matches Starlette's path regexes: a parameter is one
// non-empty segment ([^/]+), a catch-all takes the rest.
func matchPattern(pattern []string, path string) bool {
	for i, seg := range pattern {
		if strings.HasPrefix(seg, "*") {
			return true
		}
		var part string
		last := i == len(pattern)-1
		if last {
			part = path
			if strings.Contains(part, "/") {
				return false
			}
		} else {
			var ok bool
			if part, path, ok = strings.Cut(path, "/"); !ok {
				return false
			}
		}
		if strings.HasPrefix(seg, ":") {
			if part == "" {
				return false
			}
		} else if part != seg {
			return false
		}
	}
	return true
}

func (f *fallback) handle(c *gin.Context) {
	path := c.Request.URL.Path
	if r, ok := f.first(path); ok {
		c.Header("Allow", r.allow)
		writeDetail(c, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	if path != "/" {
		target := path + "/"
		if strings.HasSuffix(path, "/") {
			target = strings.TrimRight(path, "/")
		}
		if _, ok := f.first(target); ok {
			c.Header("Location", redirectURL(c.Request, target))
			c.Status(http.StatusTemporaryRedirect)
			c.Writer.WriteHeaderNow()
			return
		}
	}
	writeDetail(c, http.StatusNotFound, "Not Found")
}

// redirectURL is Starlette's URL(scope=redirect_scope) passed through
// quote(..., safe=":/%#?=@[]!$&'()*+,;"): scheme and Host header (the
// server address without one), the new path, the raw query.
func redirectURL(r *http.Request, path string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = addr.String()
		}
	}
	u := scheme + "://" + host + path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	return pythonQuote(u)
}

// pythonQuote is urllib.parse.quote with Starlette's safe set: letters,
// digits, "_.-~" and ":/%#?=@[]!$&'()*+,;" stay, every other byte is %XX.
func pythonQuote(s string) string {
	const safe = "_.-~:/%#?=@[]!$&'()*+,;"
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(safe, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
