package log_test

import (
	"strings"
	"testing"

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
		{map[string]any{"format": "json"}, "format: unknown key (known: level, payload, skip_empty)"},
	}
	for _, tt := range tests {
		_, errs := registry.New(logh.Name, "tcp", tt.options)
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
