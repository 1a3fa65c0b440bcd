package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/analysis-cache/service/domain"
)

// createAnalysis godoc
//
//	@Summary		Create Analysis
//	@Description	Write-through: the row is committed to Postgres first, then written to Redis under a version guard, so the next read is a HIT.
//	@Tags			analyses
//	@ID				create_analysis_api_v1_analyses_post
//	@Accept			json
//	@Produce		json
//	@Param			request	body		AnalysisCreate	true	"The analysis to create"
//	@Success		201		{object}	AnalysisPublic
//	@Header			201		{string}	Location	"Path of the new analysis"
//	@Failure		409		{object}	HTTPError
//	@Failure		413		{object}	HTTPError
//	@Failure		422		{object}	HTTPValidationError
//	@Failure		503		{object}	HTTPError
//	@Router			/api/v1/analyses [post]
func (h *handlers) createAnalysis(c *gin.Context) {
	body, ok := h.readBody(c, h.d.MaxBodyBytes)
	if !ok {
		return
	}
	var errs valErrors
	var a *domain.Analysis
	if errs.requireBody(body) {
		a = errs.validateCreate(body)
	}
	if errs.write(c) {
		return
	}
	created, err := h.d.Analyses.Create(c.Request.Context(), a)
	if err != nil {
		h.writeError(c, err)
		return
	}
	c.Header("Location", "/api/v1/analyses/"+created.ID.String())
	c.Data(http.StatusCreated, jsonContentType, created.AppendJSON(make([]byte, 0, 512)))
}

// listAnalyses godoc
//
//	@Summary		List Analyses
//	@Description	Version (namespace) invalidation: pages are cached under the current namespace version; every write bumps it, so no stale page is ever served.
//	@Tags			analyses
//	@ID				list_analyses_api_v1_analyses_get
//	@Produce		json
//	@Param			owner_id	query		string	false	"Only this owner's analyses"	format(uuid)
//	@Param			status		query		AnalysisStatus	false	"Only analyses in this status"
//	@Param			tag			query		string	false	"Only analyses with this tag"
//	@Param			skip		query		int		false	"Rows to skip"
//	@Param			limit		query		int		false	"Page size"
//	@Success		200			{object}	AnalysesPublic
//	@Header			200			{string}	X-Cache			"HIT, MISS, STALE or BYPASS"
//	@Header			200			{string}	X-Cache-Pattern	"version"
//	@Failure		422			{object}	HTTPValidationError
//	@Failure		503			{object}	HTTPError
//	@Router			/api/v1/analyses [get]
func (h *handlers) listAnalyses(c *gin.Context) {
	var errs valErrors
	var f domain.ListFilter
	f.OwnerID = errs.queryUUID(c, "owner_id")
	f.Status = errs.queryStatus(c, "status")
	if tag, ok := query(c, "tag"); ok {
		// Valid UTF-8 (query decodes with replacement); a U+0000 in it
		// matches nothing (the repository answers an empty page).
		f.Tag = &tag
	}
	f.Skip, f.Limit = errs.pageParams(c)
	if errs.write(c) {
		return
	}
	r, err := h.d.Lists.List(c.Request.Context(), f)
	h.writeResult(c, r, err)
}

// ingestAnalyses godoc
//
//	@Summary		Ingest Analyses
//	@Description	Write-behind: items are made durable in a Redis stream and readable at once from the cache; a background flusher writes them to Postgres in batches. A client-given id makes an item idempotent.
//	@Tags			analyses
//	@ID				ingest_analyses_api_v1_analyses_bulk_post
//	@Accept			json
//	@Produce		json
//	@Param			request	body		BulkIngest	true	"1 to 1000 analyses"
//	@Success		202		{object}	BulkAccepted
//	@Failure		413		{object}	HTTPError
//	@Failure		422		{object}	HTTPValidationError
//	@Failure		503		{object}	HTTPError
//	@Router			/api/v1/analyses/bulk [post]
func (h *handlers) ingestAnalyses(c *gin.Context) {
	body, ok := h.readBody(c, h.d.MaxBulkBodyBytes)
	if !ok {
		return
	}
	var errs valErrors
	var items []domain.Analysis
	if errs.requireBody(body) {
		items = errs.validateBulk(body)
	}
	if errs.write(c) {
		return
	}
	ids, err := h.d.Ingest.Ingest(c.Request.Context(), items)
	if err != nil {
		h.writeError(c, err)
		return
	}
	buf := make([]byte, 0, 32+len(ids)*39)
	buf = append(buf, `{"accepted":`...)
	buf = strconv.AppendInt(buf, int64(len(ids)), 10)
	buf = append(buf, `,"ids":[`...)
	for i, id := range ids {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, '"')
		buf = domain.AppendUUID(buf, id)
		buf = append(buf, '"')
	}
	buf = append(buf, "]}"...)
	c.Data(http.StatusAccepted, jsonContentType, buf)
}

// readAnalysisStats godoc
//
//	@Summary		Read Analysis Stats
//	@Description	Stampede protection: one computation at a time per key (lock plus probabilistic early refresh); others get the cached value, stale by at most STATS_TTL.
//	@Tags			analyses
//	@ID				read_analysis_stats_api_v1_analyses_stats_get
//	@Produce		json
//	@Success		200	{object}	AnalysisStats
//	@Header			200	{string}	X-Cache			"HIT, MISS, STALE or BYPASS"
//	@Header			200	{string}	X-Cache-Pattern	"stampede-protection"
//	@Failure		503	{object}	HTTPError
//	@Router			/api/v1/analyses/stats [get]
func (h *handlers) readAnalysisStats(c *gin.Context) {
	r, err := h.d.Stats.Stats(c.Request.Context())
	h.writeResult(c, r, err)
}

// readAnalysis godoc
//
//	@Summary		Read Analysis
//	@Description	Cache-aside with fill leases and negative caching: a miss loads Postgres and fills Redis only if no write happened meanwhile; an unknown id is cached as "not found" for NEGATIVE_CACHE_TTL.
//	@Tags			analyses
//	@ID				read_analysis_api_v1_analyses__analysis_id__get
//	@Produce		json
//	@Param			analysis_id		path		string	true	"Analysis id"	format(uuid)
//	@Param			if-none-match	header		string	false	"An ETag from an earlier answer: 304 when unchanged"
//	@Success		200				{object}	AnalysisPublic
//	@Header			200				{string}	ETag			"The version, quoted"
//	@Header			200				{string}	X-Cache			"HIT, MISS, STALE or BYPASS"
//	@Header			200				{string}	X-Cache-Pattern	"cache-aside, or write-behind for an id accepted by bulk ingest"
//	@Success		304				"Not Modified"
//	@Failure		404				{object}	HTTPError
//	@Failure		422				{object}	HTTPValidationError
//	@Failure		503				{object}	HTTPError
//	@Router			/api/v1/analyses/{analysis_id} [get]
func (h *handlers) readAnalysis(c *gin.Context) {
	var errs valErrors
	id := errs.pathUUID(c, "analysis_id")
	if errs.write(c) {
		return
	}
	r, err := h.d.Analyses.Get(c.Request.Context(), id)
	setCacheHeaders(c, r)
	if err != nil {
		h.writeError(c, err)
		return
	}
	tag := etag(r.Version)
	c.Writer.Header()[headerETag] = []string{tag}
	if inm := c.Request.Header["If-None-Match"]; len(inm) > 0 && noneMatch(inm[0], tag) {
		c.Status(http.StatusNotModified)
		c.Writer.WriteHeaderNow()
		return
	}
	c.Data(http.StatusOK, jsonContentType, r.Body)
}

// updateAnalysis godoc
//
//	@Summary		Update Analysis
//	@Description	Write-through: Postgres commits the change (version + 1), then Redis is updated under a version guard, so two racing writers never leave an older version cached.
//	@Tags			analyses
//	@ID				update_analysis_api_v1_analyses__analysis_id__patch
//	@Accept			json
//	@Produce		json
//	@Param			analysis_id	path		string			true	"Analysis id"	format(uuid)
//	@Param			if-match	header		string			false	"The ETag the change is based on: 412 when it is not current"
//	@Param			request		body		AnalysisUpdate	true	"The fields to change"
//	@Success		200			{object}	AnalysisPublic
//	@Header			200			{string}	ETag	"The new version, quoted"
//	@Failure		404			{object}	HTTPError
//	@Failure		412			{object}	HTTPError
//	@Failure		413			{object}	HTTPError
//	@Failure		422			{object}	HTTPValidationError
//	@Failure		503			{object}	HTTPError
//	@Router			/api/v1/analyses/{analysis_id} [patch]
func (h *handlers) updateAnalysis(c *gin.Context) {
	body, ok := h.readBody(c, h.d.MaxBodyBytes)
	if !ok {
		return
	}
	var errs valErrors
	id := errs.pathUUID(c, "analysis_id")
	var patch domain.AnalysisPatch
	if errs.requireBody(body) {
		patch = errs.validateUpdate(body)
	}
	if errs.write(c) {
		return
	}
	ifMatch, err := h.ifMatchVersion(c, id)
	if err != nil {
		h.writeError(c, err)
		return
	}
	a, err := h.d.Analyses.Update(c.Request.Context(), id, patch, ifMatch)
	if err != nil {
		h.writeError(c, err)
		return
	}
	c.Writer.Header()[headerETag] = []string{etag(a.Version)}
	c.Data(http.StatusOK, jsonContentType, a.AppendJSON(make([]byte, 0, 512)))
}

// deleteAnalysis godoc
//
//	@Summary		Delete Analysis
//	@Description	Event-based invalidation: Postgres deletes first, then a versioned tombstone replaces the cache entry and every list that could hold the analysis is invalidated.
//	@Tags			analyses
//	@ID				delete_analysis_api_v1_analyses__analysis_id__delete
//	@Param			analysis_id	path	string	true	"Analysis id"	format(uuid)
//	@Param			if-match	header	string	false	"The ETag the deletion is based on: 412 when it is not current"
//	@Success		204			"Deleted"
//	@Failure		404			{object}	HTTPError
//	@Failure		412			{object}	HTTPError
//	@Failure		422			{object}	HTTPValidationError
//	@Failure		503			{object}	HTTPError
//	@Router			/api/v1/analyses/{analysis_id} [delete]
func (h *handlers) deleteAnalysis(c *gin.Context) {
	var errs valErrors
	id := errs.pathUUID(c, "analysis_id")
	if errs.write(c) {
		return
	}
	ifMatch, err := h.ifMatchVersion(c, id)
	if err != nil {
		h.writeError(c, err)
		return
	}
	if err := h.d.Analyses.Delete(c.Request.Context(), id, ifMatch); err != nil {
		h.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
	c.Writer.WriteHeaderNow()
}

// listUserAnalyses godoc
//
//	@Summary		List User Analyses
//	@Description	Read-through with tag invalidation: a repository decorator loads and caches the page, tagged with its owner; a write by that owner invalidates the tag.
//	@Tags			users
//	@ID				list_user_analyses_api_v1_users__owner_id__analyses_get
//	@Produce		json
//	@Param			owner_id	path		string	true	"Owner id"		format(uuid)
//	@Param			skip		query		int		false	"Rows to skip"
//	@Param			limit		query		int		false	"Page size"
//	@Success		200			{object}	AnalysesPublic
//	@Header			200			{string}	X-Cache			"HIT, MISS, STALE or BYPASS"
//	@Header			200			{string}	X-Cache-Pattern	"read-through"
//	@Failure		422			{object}	HTTPValidationError
//	@Failure		503			{object}	HTTPError
//	@Router			/api/v1/users/{owner_id}/analyses [get]
func (h *handlers) listUserAnalyses(c *gin.Context) {
	var errs valErrors
	owner := errs.pathUUID(c, "owner_id")
	skip, limit := errs.pageParams(c)
	if errs.write(c) {
		return
	}
	r, err := h.d.Lists.ListByOwner(c.Request.Context(), owner, skip, limit)
	h.writeResult(c, r, err)
}
