package service

import (
	"context"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// Lists serves the two list endpoints:
//
//   - List (GET /api/v1/analyses) through the "analyses" Namespace: pages are
//     cached per canonical query under the namespace version, and every
//     write bumps the version (ListInvalidation), so no list is stale after a
//     write answers. X-Cache-Pattern "version".
//   - ListByOwner (GET /api/v1/users/{owner_id}/analyses) through a
//     read-through repository (cache.ReadThrough): this service does not see
//     the cache, it learns HIT/MISS/BYPASS from the context recorder.
//     X-Cache-Pattern "read-through".
//
// A cached body is byte-identical to an uncached one: both are the bytes of
// domain.Page.AppendJSON. Lists is safe for concurrent use.
type Lists struct {
	repo  domain.AnalysisRepository
	ns    *cache.Namespace
	users domain.AnalysisRepository
}

// NewLists returns the list use cases: repo loads filtered lists on a
// namespace miss, userRepo (the ReadThrough decorator) serves user lists.
func NewLists(repo domain.AnalysisRepository, ns *cache.Namespace, userRepo domain.AnalysisRepository) *Lists {
	return &Lists{repo: repo, ns: ns, users: userRepo}
}

// List returns the page f selects, from the namespace cache or Postgres.
// Errors are the repository's (EUNAVAILABLE when Postgres is down and the
// page is not cached).
func (l *Lists) List(ctx context.Context, f domain.ListFilter) (cache.Result, error) {
	return l.ns.Get(ctx, CanonicalListQuery(f), func(ctx context.Context) ([]byte, error) {
		page, err := l.repo.List(ctx, f)
		if err != nil {
			return nil, err
		}
		return page.AppendJSON(nil), nil
	})
}

// ListByOwner returns the owner's page through the read-through repository.
// Status comes from the decorator (MISS when userRepo is not one).
func (l *Lists) ListByOwner(ctx context.Context, owner uuid.UUID, skip, limit int) (cache.Result, error) {
	ctx, rs := cache.WithStatus(ctx)
	rs.BodyOnly = true // we write the body; a HIT need not parse it
	page, err := l.users.ListByOwner(ctx, owner, skip, limit)
	res := cache.Result{Status: rs.Status, Pattern: cache.PatternReadThrough}
	if res.Status == "" {
		res.Status = cache.Miss
	}
	if err != nil {
		return res, err
	}
	if res.Body = rs.Body; res.Body == nil {
		res.Body = page.AppendJSON(nil)
	}
	return res, nil
}

// CanonicalListQuery is the one string of a filtered list query: the same
// filter always gives the same string and different filters different
// strings (absent and empty are told apart; the tag is quoted, so no value
// can forge a separator). Its sha256 names the cached page.
func CanonicalListQuery(f domain.ListFilter) string {
	var b strings.Builder
	b.WriteString("owner=")
	if f.OwnerID != nil {
		b.WriteString(f.OwnerID.String())
	} else {
		b.WriteByte('-')
	}
	b.WriteString("&status=")
	if f.Status != nil {
		b.WriteString(strconv.Quote(string(*f.Status)))
	} else {
		b.WriteByte('-')
	}
	b.WriteString("&tag=")
	if f.Tag != nil {
		b.WriteString(strconv.Quote(*f.Tag))
	} else {
		b.WriteByte('-')
	}
	b.WriteString("&skip=")
	b.WriteString(strconv.Itoa(f.Skip))
	b.WriteString("&limit=")
	b.WriteString(strconv.Itoa(f.Limit))
	return b.String()
}
