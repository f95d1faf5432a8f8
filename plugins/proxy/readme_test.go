package proxy_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/sluice-dev/sluice/pkg/config"
)

// TestReadmeExamples loads every YAML example of the README through the
// config loader, so that the documentation cannot drift from the code.
func TestReadmeExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no yaml example")
	}
	for i, b := range blocks {
		if _, err := config.Parse("README.md.yaml", b[1]); err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, b[1])
		}
	}
}
