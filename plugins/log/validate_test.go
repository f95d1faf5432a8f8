package log_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/registry"
	logh "github.com/sluice-dev/sluice/plugins/log"
)

func TestOptions(t *testing.T) {
	tests := []struct {
		options map[string]any
		want    string // "" for valid
	}{
		{map[string]any{}, ""},
		{map[string]any{"level": "trace", "payload": true}, ""},
		{map[string]any{"level": "loud"}, `level: invalid value "loud" (allowed: trace, debug, info, warn, error)`},
		{map[string]any{"payload": "yes"}, "payload: expected true or false"},
		{map[string]any{"format": "json"}, "format: unknown key (known: level, payload)"},
	}
	for _, tt := range tests {
		_, errs := registry.New(logh.Name, tt.options)
		var got []string
		for _, e := range errs {
			got = append(got, e.Error())
		}
		joined := strings.Join(got, "\n")
		if (tt.want == "") != (len(errs) == 0) || !strings.Contains(joined, tt.want) {
			t.Errorf("options %v: errors %q, want %q", tt.options, joined, tt.want)
		}
	}
}

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
