package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// probe is a terminal handler that reports whether the connection it got
// was still the bare socket.
type probe struct{}

var wrapped = make(chan bool, 4)

func (*probe) ServeStream(_ context.Context, c *chain.Conn) error {
	wrapped <- c.Wrapped()
	return nil
}

func init() { registry.Register("probe", func() any { return new(probe) }) }

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
      - handler: probe
`)
		dialFrom(t, "", h.Addr("rl-wrap"))
		select {
		case got := <-wrapped:
			if got != tt.want {
				t.Errorf("with %q the terminal handler got a wrapped conn: %v, want %v", tt.options, got, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the probe never ran")
		}
	}
}
