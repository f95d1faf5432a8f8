package ratelimit_test

import (
	"testing"

	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// TestReadmeExamples loads every YAML example of the README through the
// config loader, so that the documentation cannot drift from the code.
func TestReadmeExamples(t *testing.T) {
	for i, cfg := range plugintest.CheckReadme(t, "README.md") {
		if !usesHandler(cfg.Listeners[0].Chain, "ratelimit") {
			t.Errorf("example %d does not use ratelimit", i+1)
		}
	}
}
