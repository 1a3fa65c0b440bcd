package service

import (
	"context"
	"fmt"
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
//   - ListByOwner (GET /api/v1/users/{owner_id}/analyses) through the
//     read-through cache of per-owner lists (cache.ReadThrough, reading
//     through the repository's ListByOwner): every write invalidates its
//     owner's tag (ListInvalidation). X-Cache-Pattern "read-through".
//
// A cached body is byte-identical to an uncached one: both are the bytes of
// domain.Page.AppendJSON. Lists is safe for concurrent use.
type Lists struct {
	repo  domain.AnalysisRepository
	ns    *cache.Namespace
	users *cache.ReadThrough[domain.Page]
}

// NewLists returns the list use cases of repo on b: filtered lists in the
// namespace of AnalysisResource, per-owner lists read through repo, pages
// living opt.TTL ± opt.Jitter.
func NewLists(b cache.Backend, repo domain.AnalysisRepository, opt cache.PageOptions) *Lists {
	return &Lists{
		repo:  repo,
		ns:    cache.NewNamespace(b, AnalysisResource, opt),
		users: cache.NewReadThrough(b, AnalysisResource, OwnerLists(repo), PageEncoding{}, opt),
	}
}

// OwnerLists is repo's ListByOwner as the source of a read-through cache
// (the group is the owner's id).
func OwnerLists(repo domain.AnalysisRepository) cache.GroupLister[domain.Page] {
	return cache.GroupListerFunc[domain.Page](func(ctx context.Context, owner string, skip, limit int) (domain.Page, error) {
		id, err := uuid.Parse(owner)
		if err != nil {
			return domain.Page{}, fmt.Errorf("owner %q: %w", owner, err)
		}
		return repo.ListByOwner(ctx, id, skip, limit)
	})
}

// PageEncoding is the cache.Encoding of a page: the exact PaginatedAnalyses body.
type PageEncoding struct{}

// Append appends the body of p to dst.
func (PageEncoding) Append(dst []byte, p domain.Page) []byte { return p.AppendJSON(dst) }

// Parse parses a body Append made.
func (PageEncoding) Parse(body []byte) (domain.Page, error) { return domain.ParsePageJSON(body) }

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

// ListByOwner returns the owner's page through the read-through cache.
// Errors are the repository's.
func (l *Lists) ListByOwner(ctx context.Context, owner uuid.UUID, skip, limit int) (cache.Result, error) {
	return l.users.Get(ctx, owner.String(), skip, limit)
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
