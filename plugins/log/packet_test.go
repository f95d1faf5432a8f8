package log_test

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// flowIdle is the UDP listeners' idle_timeout here: short, so that flows
// end (and are recorded) soon after their last datagram.
const flowIdle = 300 * time.Millisecond

// serveUDP applies a config of one UDP listener, name, with chain (YAML
// list items indented for it), and returns its address.
func (h *harness) serveUDP(name, chain string) string {
	h.Apply(`
listeners:
  - name: ` + name + `
    network: udp
    address: 127.0.0.1:0
    idle_timeout: ` + flowIdle.String() + `
    chain:
` + chain)
	return h.Addr(name)
}

func dialUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c.(*net.UDPConn)
}

// ping sends msg and waits for its echo.
func ping(t *testing.T, c *net.UDPConn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(plugintest.WaitTimeout))
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != msg {
		t.Fatalf("sent %q, got %q, %v", msg, buf[:n], err)
	}
}

// waitRecords waits until the JSON log holds n records with message msg.
func (h *harness) waitRecords(t *testing.T, msg string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(plugintest.WaitTimeout)
	for {
		recs := h.Records(msg)
		if len(recs) >= n || time.Now().After(deadline) {
			if len(recs) != n {
				t.Fatalf("%d %q records, want %d:\n%s", len(recs), msg, n, h.Log())
			}
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFlowRecordAtExpiryHasExactCounts(t *testing.T) {
	h := newHarness(t, hclog.Info, true)
	addr := h.serveUDP("log-udp", "      - handler: log\n      - handler: echo\n")
	a, b := dialUDP(t, addr), dialUDP(t, addr)
	ping(t, a, "hello")
	ping(t, b, "x")
	ping(t, a, "sluice!")
	ping(t, a, "") // an empty datagram counts as one, of no bytes
	h.WaitIdle("log-udp")

	recs := h.Records("flow closed")
	if len(recs) != 2 {
		t.Fatalf("%d records, want one per flow:\n%s", len(recs), h.Log())
	}
	want := map[string]map[string]any{
		a.LocalAddr().String(): {"bytes_in": json.Number("12"), "bytes_out": json.Number("12"), "packets_in": json.Number("3"), "packets_out": json.Number("3")},
		b.LocalAddr().String(): {"bytes_in": json.Number("1"), "bytes_out": json.Number("1"), "packets_in": json.Number("1"), "packets_out": json.Number("1")},
	}
	for _, r := range recs {
		w, ok := want[r["remote"].(string)]
		if !ok {
			t.Errorf("record for an unknown remote: %v", r)
			continue
		}
		delete(want, r["remote"].(string))
		w["@level"] = "info"
		w["@module"] = "sluice.supervisor.listener.log"
		w["listener"] = "log-udp"
		w["local"] = addr
		w["network"] = "udp"
		for k, v := range w {
			if r[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", r["remote"], k, r[k], v)
			}
		}
		if _, ok := r["error"]; ok {
			t.Errorf("%s: error = %v on a flow that went quiet", r["remote"], r["error"])
		}
		// A quiet flow ends no sooner than its idle timeout after its
		// last datagram.
		d, _ := r["duration"].(json.Number)
		if ns, err := d.Int64(); err != nil || time.Duration(ns) < flowIdle || time.Duration(ns) > time.Minute {
			t.Errorf("%s: duration = %v ns, want from %v to a minute", r["remote"], d, flowIdle)
		}
	}
}

func TestFlowRecordCarriesTheErrorAndLevel(t *testing.T) {
	// An upstream port nothing listens on: the proxy's first datagram
	// brings back an ICMP port unreachable, which ends the flow.
	dead, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().String()
	_ = dead.Close()

	h := newHarness(t, hclog.Info, true)
	addr := h.serveUDP("log-udp-err", `      - handler: log
        level: warn
      - handler: proxy
        upstreams: [udp://`+deadAddr+`]
`)
	c := dialUDP(t, addr)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	r := h.waitRecords(t, "flow closed", 1)[0]
	if r["@level"] != "warn" || r["bytes_in"] != json.Number("4") || r["bytes_out"] != json.Number("0") ||
		r["packets_in"] != json.Number("1") || r["remote"] != c.LocalAddr().String() {
		t.Errorf("record = %v", r)
	}
	if e, _ := r["error"].(string); !strings.Contains(e, "proxy: receiving from udp://"+deadAddr) || !strings.Contains(e, "connection refused") {
		t.Errorf("error = %q, want the proxy's refused receive", r["error"])
	}
}

func TestFlowRecordCountsDroppedDatagrams(t *testing.T) {
	h := newHarness(t, hclog.Info, true)
	addr := h.serveUDP("log-udp-rl", `      - handler: log
      - handler: ratelimit
        packets_per_second: 0.001
        burst: 1
      - handler: echo
`)
	c := dialUDP(t, addr)
	ping(t, c, "served")
	for _, m := range []string{"dropped", "dropped too"} {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	r := h.waitRecords(t, "flow closed", 1)[0]
	if r["packets_in"] != json.Number("3") || r["packets_out"] != json.Number("1") ||
		r["bytes_in"] != json.Number("24") || r["bytes_out"] != json.Number("6") {
		t.Errorf("record = %v; want every datagram received counted in, the one echoed out", r)
	}
	rejected := h.Metric("sluice_ratelimit_rejected_total", "listener", "log-udp-rl", "reason", "packet_rate")
	if rejected != 2 {
		t.Errorf("rejected{reason=packet_rate} = %v, want 2", rejected)
	}
}

func TestFlowRecordBelowTheLogLevelIsNotWritten(t *testing.T) {
	h := newHarness(t, hclog.Info, false)
	addr := h.serveUDP("log-udp-quiet", "      - handler: log\n        level: debug\n      - handler: echo\n")
	ping(t, dialUDP(t, addr), "a")
	h.WaitIdle("log-udp-quiet")
	if strings.Contains(h.Log(), "flow closed") {
		t.Fatalf("a debug record was written at log level info:\n%s", h.Log())
	}
}

func TestFlowPayloadAtTrace(t *testing.T) {
	h := newHarness(t, hclog.Trace, true)
	addr := h.serveUDP("log-udp-payload", "      - handler: log\n        payload: true\n      - handler: echo\n")
	c := dialUDP(t, addr)
	long := strings.Repeat("a", 200)
	ping(t, c, "ping")
	ping(t, c, long)
	h.WaitIdle("log-udp-payload")

	recs := h.Records("data")
	type rec struct {
		direction, data string
		len             json.Number
		truncated       bool
	}
	want := []rec{
		{"in", "ping", "4", false}, {"out", "ping", "4", false},
		{"in", long[:128], "200", true}, {"out", long[:128], "200", true},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d data records, want %d:\n%s", len(recs), len(want), h.Log())
	}
	for i, r := range recs {
		got := rec{r["direction"].(string), r["data"].(string), r["len"].(json.Number), r["truncated"] == true}
		if got != want[i] || r["remote"] != c.LocalAddr().String() || r["@level"] != "trace" {
			t.Errorf("data record %d = %v, want %+v", i, r, want[i])
		}
	}
	if n := len(h.Records("flow closed")); n != 1 {
		t.Errorf("%d flow records, want 1", n)
	}
}

// TestFlowRecordSocat: what a user sees for "echo hello | socat - UDP:...".
func TestFlowRecordSocat(t *testing.T) {
	plugintest.Socat(t)
	h := newHarness(t, hclog.Info, true)
	addr := h.serveUDP("log-udp-socat", "      - handler: log\n      - handler: echo\n")
	if out := plugintest.SocatUDP(t, addr, "hello\n", 500*time.Millisecond); out != "hello\n" {
		t.Fatalf("socat printed %q, want \"hello\\n\"", out)
	}
	r := h.waitRecords(t, "flow closed", 1)[0]
	if r["bytes_in"] != json.Number("6") || r["bytes_out"] != json.Number("6") || r["listener"] != "log-udp-socat" {
		t.Errorf("record = %v", r)
	}
}

// TestSkipEmptyFlow: with skip_empty, a flow of empty datagrams has no
// record once it went quiet; a flow that carried bytes has its record.
func TestSkipEmptyFlow(t *testing.T) {
	h := newHarness(t, hclog.Info, true)
	addr := h.serveUDP("udp-skip", "      - handler: log\n        skip_empty: true\n      - handler: echo\n")
	empty := dialUDP(t, addr)
	if _, err := empty.Write(nil); err != nil {
		t.Fatal(err)
	}
	said := dialUDP(t, addr)
	ping(t, said, "hi")
	// The empty flow began first and both end after the same quiet time:
	// once the second's record is there, the first's would be too.
	h.waitRecords(t, "flow closed", 1)
	time.Sleep(2 * flowIdle)
	recs := h.Records("flow closed")
	if len(recs) != 1 || recs[0]["remote"] != said.LocalAddr().String() {
		t.Fatalf("records %v, want the one of %s alone", recs, said.LocalAddr())
	}
	if h.Metric("sluice_connections_total", "listener", "udp-skip") != 2 {
		t.Errorf("flows counted: %v, want 2 (the empty one too)", h.Metric("sluice_connections_total", "listener", "udp-skip"))
	}
}
