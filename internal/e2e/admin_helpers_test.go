package e2e

// Helpers for the admin endpoint tests: HTTP requests, /status, parsed
// /metrics, a known echo workload and config texts.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/pkg/admin"
)

// client makes one connection per request, so that a test never talks to
// an old endpoint over a kept-alive connection, and leaves no goroutine.
func client() *http.Client {
	return &http.Client{
		Timeout:   waitBound,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
}

type response struct {
	code   int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func decodeJSON[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
	return v
}

func status(t *testing.T, base string) admin.Status {
	t.Helper()
	r := do(t, "GET", base+"/status")
	if r.code != http.StatusOK {
		t.Fatalf("GET /status: %d %s", r.code, r.body)
	}
	return decodeJSON[admin.Status](t, r)
}

func postReload(t *testing.T, base string) (int, admin.ReloadResponse) {
	t.Helper()
	r := do(t, "POST", base+"/reload")
	return r.code, decodeJSON[admin.ReloadResponse](t, r)
}

// scrape is one parsed GET /metrics.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, base string) scrape {
	t.Helper()
	r := do(t, "GET", base+"/metrics")
	if r.code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.code, r.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the sample of name whose labels are exactly labels
// ("k", "v", ...), and whether there is one.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	fam, ok := s[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, lp := range m.GetLabel() {
			if want[lp.GetName()] != lp.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// must is value for a sample that has to exist.
func (s scrape) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.value(name, labels...)
	if !ok {
		t.Fatalf("no sample %s%v in /metrics", name, labels)
	}
	return v
}

// echoRoundTrip sends payload over a new connection to network/addr,
// half-closes, reads everything back up to EOF and checks it is payload.
func echoRoundTrip(t *testing.T, network, addr string, payload []byte) {
	t.Helper()
	c, err := net.DialTimeout(network, addr, waitBound)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitBound))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, rerr := io.ReadAll(c)
	if werr := <-errc; werr != nil {
		t.Fatalf("writing to %s: %v", addr, werr)
	}
	if rerr != nil {
		t.Fatalf("reading from %s: %v", addr, rerr)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echo from %s: got %d bytes, want %d (equal: false)", addr, len(got), len(payload))
	}
}

// payload is n deterministic bytes.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// listenerSpec is one listener of a test config; every chain is echo.
type listenerSpec struct{ name, network, address string }

func configYAML(adminAddr string, ls ...listenerSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: debug\nadmin:\n  address: %q\nshutdown:\n  drain_timeout: 5s\nlisteners:\n", adminAddr)
	for _, l := range ls {
		fmt.Fprintf(&b, "  - name: %s\n    network: %s\n    address: %q\n    chain:\n      - handler: echo\n", l.name, l.network, l.address)
	}
	return b.String()
}

func listenerAddr(st admin.Status, name string) (string, bool) {
	for _, l := range st.Listeners {
		if l.Name == name {
			return l.Address, true
		}
	}
	return "", false
}

// traffic is a known workload: on each listener, one echo round trip per
// size. It returns the bytes each listener must have counted each way.
func traffic(t *testing.T, network, addr string, sizes ...int) float64 {
	t.Helper()
	total := 0
	for _, n := range sizes {
		echoRoundTrip(t, network, addr, payload(n))
		total += n
	}
	return float64(total)
}

// checkTraffic waits for the connections to end, then compares every
// per-listener metric with the workload.
func checkTraffic(t *testing.T, base, listener string, conns int, bytes float64) {
	t.Helper()
	var m scrape
	waitFor(t, listener+" connections_active back to 0", func() bool {
		m = scrapeMetrics(t, base)
		v, _ := m.value("sluice_connections_active", "listener", listener)
		return v == 0
	})
	if got := m.must(t, "sluice_connections_total", "listener", listener); got != float64(conns) {
		t.Errorf("%s connections_total %v, want %d", listener, got, conns)
	}
	if got := m.must(t, "sluice_bytes_total", "listener", listener, "direction", "in"); got != bytes {
		t.Errorf("%s bytes_total{in} %v, want %v", listener, got, bytes)
	}
	if got := m.must(t, "sluice_bytes_total", "listener", listener, "direction", "out"); got != bytes {
		t.Errorf("%s bytes_total{out} %v, want %v", listener, got, bytes)
	}
}
