package api

import (
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"

	"github.com/analysis-cache/service/domain"
)

var healthBody = []byte(`{"status":"ok"}`)

// health godoc
//
//	@Summary		Health
//	@Description	Liveness: answers as long as the process serves HTTP; touches neither Postgres nor Redis.
//	@Tags			ops
//	@ID				health_health_get
//	@Produce		json
//	@Success		200	{object}	HealthStatus
//	@Router			/health [get]
func (h *handlers) health(c *gin.Context) {
	c.Data(http.StatusOK, jsonContentType, healthBody)
}

// ready godoc
//
//	@Summary		Ready
//	@Description	Readiness: checks Postgres and Redis; 503 names the one that failed.
//	@Tags			ops
//	@ID				ready_ready_get
//	@Produce		json
//	@Success		200	{object}	ReadyStatus
//	@Failure		503	{object}	ReadyStatus
//	@Router			/ready [get]
func (h *handlers) ready(c *gin.Context) {
	var checks map[string]string
	if h.d.Ready != nil {
		checks = h.d.Ready(c.Request.Context())
	}
	// postgres and redis first, as the contract writes them, then any other.
	names := make([]string, 0, len(checks))
	for name := range checks {
		if name != "postgres" && name != "redis" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range []string{"redis", "postgres"} {
		if _, ok := checks[name]; ok {
			names = append([]string{name}, names...)
		}
	}
	status, word := http.StatusOK, "ok"
	b := []byte(`{"status":`)
	body := []byte(`,"checks":{`)
	for i, name := range names {
		if i > 0 {
			body = append(body, ',')
		}
		body = domain.AppendJSONString(body, name)
		body = append(body, ':')
		body = domain.AppendJSONString(body, checks[name])
		if checks[name] != "ok" {
			status, word = http.StatusServiceUnavailable, "unavailable"
		}
	}
	b = domain.AppendJSONString(b, word)
	b = append(append(b, body...), "}}"...)
	c.Data(status, jsonContentType, b)
}
