package log_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// probe is a terminal handler that reports whether the connection it got
// was still the bare socket, and counts one byte each way.
type probe struct{}

var wrapped = make(chan bool, 4)

func (*probe) ServeStream(_ context.Context, c *chain.Conn) error {
	c.AddIn(1)
	c.AddOut(2)
	wrapped <- c.Wrapped()
	return nil
}

func init() { registry.Register("probe", func() any { return new(probe) }) }

func TestConnIsWrappedOnlyForPayload(t *testing.T) {
	for _, tt := range []struct {
		options string
		want    bool
	}{
		{"level: info", false},
		{"payload: false", false},
		{"payload: true", true},
	} {
		h := newHarness(t, hclog.Info, false)
		addr := h.serve("log-wrap", "      - handler: log\n        "+tt.options+"\n      - handler: probe\n")
		exchange(t, addr)
		select {
		case got := <-wrapped:
			if got != tt.want {
				t.Errorf("with %q the terminal handler got a wrapped conn: %v, want %v", tt.options, got, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the probe never ran")
		}
		h.WaitIdle("log-wrap")
		// Counts come from the terminal handler's counters, not a wrapper.
		if !strings.Contains(h.Log(), "bytes_in=1 bytes_out=2") {
			t.Errorf("with %q the record lacks the terminal's counts:\n%s", tt.options, h.Log())
		}
	}
}

func TestPayloadThroughASocketKeepsHalfClose(t *testing.T) {
	h := newHarness(t, hclog.Trace, true)
	addr := h.serve("log-payload", "      - handler: log\n        payload: true\n      - handler: echo\n")
	// exchange fails unless the half-close passes the payload wrapper.
	exchange(t, addr, []byte("ping"))
	h.WaitIdle("log-payload")
	var in, out int
	for _, r := range h.Records("data") {
		if r["data"] != "ping" {
			continue
		}
		switch r["direction"] {
		case "in":
			in++
		case "out":
			out++
		}
	}
	if in != 1 || out != 1 {
		t.Fatalf("payload records in=%d out=%d, want 1 each:\n%s", in, out, h.Log())
	}
}
