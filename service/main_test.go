package service

import (
	"os"
	"testing"

	"github.com/analysis-cache/service/internal/testenv"
)

// TestMain gives package service its private database and Redis key prefix.
func TestMain(m *testing.M) { os.Exit(testenv.Run(m)) }
