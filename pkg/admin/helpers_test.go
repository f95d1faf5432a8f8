package admin_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-dev/sluice/pkg/admin"
)

// waitBound is how long a test waits for something that happens "soon"
// (a connection's end reaching the gauges): generous, because the test
// machine is small and shared.
const waitBound = 15 * time.Second

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

// waitFor polls cond until it holds or waitBound passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitBound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
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

// refused reports whether nothing accepts on addr any more.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// freeAddr returns a loopback address that nothing listens on now.
func freeAddr(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// occupy binds a loopback address for the test's duration.
func occupy(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln.Addr().String()
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

// writeFile replaces path's content the way an editor saving by rename
// does, so that a reader never sees half a file.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func listenerAddr(st admin.Status, name string) (string, bool) {
	for _, l := range st.Listeners {
		if l.Name == name {
			return l.Address, true
		}
	}
	return "", false
}
