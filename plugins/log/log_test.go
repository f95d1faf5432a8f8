package log_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestJSONRecordHasExactByteCounts(t *testing.T) {
	h := newHarness(t, hclog.Info, true)
	addr := h.serve("log-json", "      - handler: log\n      - handler: echo\n")
	c := exchange(t, addr, []byte("hello, sluice\n"), []byte("more"))
	h.WaitIdle("log-json")

	recs := h.Records("connection closed")
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1:\n%s", len(recs), h.Log())
	}
	r := recs[0]
	want := map[string]any{
		"@level":    "info",
		"listener":  "log-json",
		"remote":    c.LocalAddr().String(),
		"local":     c.RemoteAddr().String(),
		"bytes_in":  json.Number("18"),
		"bytes_out": json.Number("18"),
	}
	for k, v := range want {
		if r[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r[k], v)
		}
	}
	d, ok := r["duration"].(json.Number)
	if !ok {
		t.Fatalf("duration = %#v, want a number", r["duration"])
	}
	if ns, err := d.Int64(); err != nil || ns <= 0 || time.Duration(ns) > time.Minute {
		t.Errorf("duration = %v ns, want a positive duration below a minute", d)
	}
	if _, ok := r["error"]; ok {
		t.Errorf("error = %v on a clean connection", r["error"])
	}
}

func TestRecordCarriesTheErrorAndLevel(t *testing.T) {
	h := newHarness(t, hclog.Info, false)
	addr := h.serve("log-err", `      - handler: log
        level: warn
      - handler: ratelimit
        connections_per_second: 0.001
        burst: 1
      - handler: echo
`)
	exchange(t, addr, []byte("a"))
	// The ratelimit closes this one; once it has, the chain is running.
	waitClosed(t, addr)
	h.WaitIdle("log-err")

	lines := strings.Split(strings.TrimSpace(h.Log()), "\n")
	var records []string
	for _, l := range lines {
		if strings.Contains(l, "connection closed") {
			records = append(records, l)
		}
	}
	if len(records) != 2 {
		t.Fatalf("%d records, want 2:\n%s", len(records), h.Log())
	}
	for _, r := range records {
		if !strings.Contains(r, "[WARN]") || !strings.Contains(r, "listener=log-err") {
			t.Errorf("record not at warn or without its listener: %s", r)
		}
	}
	// The first connection's record may be written after the second's:
	// its server side ends only once the client has read the echo and
	// closed. So the records are told apart by what they carry.
	served, rejected := records[0], records[1]
	if strings.Contains(served, "error=") {
		served, rejected = rejected, served
	}
	if !strings.Contains(served, "bytes_in=1 bytes_out=1") || strings.Contains(served, "error=") {
		t.Errorf("served connection's record: %s", served)
	}
	if !strings.Contains(rejected, `error="ratelimit: connection rejected (rate)"`) || !strings.Contains(rejected, "bytes_in=0") {
		t.Errorf("rejected connection's record lacks the rejection: %s", rejected)
	}
}

func TestRecordBelowTheLogLevelIsNotWritten(t *testing.T) {
	h := newHarness(t, hclog.Info, false)
	addr := h.serve("log-quiet", "      - handler: log\n        level: debug\n      - handler: echo\n")
	exchange(t, addr, []byte("a"))
	h.WaitIdle("log-quiet")
	if strings.Contains(h.Log(), "connection closed") {
		t.Fatalf("a debug record was written at log level info:\n%s", h.Log())
	}
}

// TestSkipEmpty: with skip_empty, a connection that moved no byte and
// ended by its client's close or reset (a load balancer's health check)
// has no record; one that moved bytes has its record, and so do empty
// ones that a handler refused or whose upstream could not be reached.
func TestSkipEmpty(t *testing.T) {
	h := newHarness(t, hclog.Info, true)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close() // nothing listens there: connects are refused
	h.Apply(`
listeners:
  - name: echo
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: log
        skip_empty: true
      - handler: echo
  - name: limited
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: log
        skip_empty: true
      - handler: ratelimit
        connections_per_second: 0.001
        burst: 1
      - handler: echo
  - name: dead
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: log
        skip_empty: true
      - handler: proxy
        upstreams: [tcp://` + deadAddr + `]
`)
	// On echo: a check that connects and closes, one that resets, and a
	// client that says something.
	closeAt := func(addr string, reset bool) {
		c := dial(t, addr)
		if reset {
			_ = c.(*net.TCPConn).SetLinger(0)
		}
		_ = c.Close()
	}
	closeAt(h.Addr("echo"), false)
	closeAt(h.Addr("echo"), true)
	said := exchange(t, h.Addr("echo"), []byte("hi"))
	// On limited: the first connection takes the one token (its echo
	// says it was admitted), the second, empty, is refused.
	admitted := exchange(t, h.Addr("limited"), []byte("a"))
	refused := waitClosed(t, h.Addr("limited"))
	// On dead: an empty connection whose upstream refuses.
	unreached := waitClosed(t, h.Addr("dead"))
	for _, l := range []string{"echo", "limited", "dead"} {
		h.WaitIdle(l)
	}

	got := map[string]string{} // remote → error ("" for none)
	for _, r := range h.Records("connection closed") {
		e, _ := r["error"].(string)
		got[r["remote"].(string)] = e
	}
	want := map[string]string{
		said.LocalAddr().String():      "",
		admitted.LocalAddr().String():  "",
		refused.LocalAddr().String():   "ratelimit: connection rejected (rate)",
		unreached.LocalAddr().String(): "connection refused",
	}
	if len(got) != len(want) {
		t.Errorf("%d records, want %d (the empty, clean ones left out):\n%s", len(got), len(want), h.Log())
	}
	for remote, e := range want {
		g, ok := got[remote]
		switch {
		case !ok:
			t.Errorf("no record for %s, want one with error %q", remote, e)
		case e == "" && g != "", e != "" && !strings.Contains(g, e):
			t.Errorf("record for %s: error %q, want %q", remote, g, e)
		}
	}
}
