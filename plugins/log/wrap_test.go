package log_test

import (
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/plugintest"
)

func init() { plugintest.RegisterWrapProbe() }

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
		addr := h.serve("log-wrap", "      - handler: log\n        "+tt.options+"\n      - handler: wrap-probe\n")
		exchange(t, addr)
		if got := plugintest.ProbeWrapped(t); got != tt.want {
			t.Errorf("with %q the terminal handler got a wrapped conn: %v, want %v", tt.options, got, tt.want)
		}
		h.WaitIdle("log-wrap")
		// Counts come from the terminal handler's counters, not a wrapper.
		if !strings.Contains(h.Log(), "bytes_in=1 bytes_out=2 probe=seen") {
			t.Errorf("with %q the record lacks the terminal's counts or its annotation:\n%s", tt.options, h.Log())
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
