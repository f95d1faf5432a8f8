package ratelimit_test

import (
	"testing"

	"github.com/sluice-dev/sluice/pkg/plugintest"
)

func init() { plugintest.RegisterWrapProbe() }

func TestConnIsWrappedOnlyForBytesPerSecond(t *testing.T) {
	for _, tt := range []struct {
		options string
		want    bool
	}{
		{"max_connections: 5\n        per_ip: {connections_per_second: 100}", false},
		{"bytes_per_second: 1MiB", true},
	} {
		h := newHarness(t)
		h.Apply(`
listeners:
  - name: rl-wrap
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: ratelimit
        ` + tt.options + `
      - handler: wrap-probe
`)
		dialFrom(t, "", h.Addr("rl-wrap"))
		if got := plugintest.ProbeWrapped(t); got != tt.want {
			t.Errorf("with %q the terminal handler got a wrapped conn: %v, want %v", tt.options, got, tt.want)
		}
	}
}
