package log_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
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
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// The ratelimit closes this one; once it has, the chain is running.
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || chain.IsTimeout(err) {
		t.Fatalf("second connection: read %d, %v; want it closed", n, err)
	}
	_ = c.Close()
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
