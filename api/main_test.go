package api

import (
	"os"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/analysis-cache/service/internal/testenv"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.ReleaseMode)
	os.Exit(testenv.Run(m))
}
