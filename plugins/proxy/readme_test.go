package proxy_test

import (
	"testing"

	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// TestReadmeExamples loads every YAML example of the README through the
// config loader, so that the documentation cannot drift from the code.
func TestReadmeExamples(t *testing.T) {
	for i, cfg := range plugintest.CheckReadme(t, "README.md") {
		for _, l := range cfg.Listeners {
			if h := l.Chain[len(l.Chain)-1].Handler; h != "proxy" {
				t.Errorf("example %d ends in %q, not proxy", i+1, h)
			}
		}
	}
}
