package proxyprotocol_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/plugintest"
	_ "github.com/sluice-dev/sluice/plugins/all"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var reasons = []string{"untrusted", "malformed", "missing", "timeout"}

// front is an in-process sluice with one listener "pp": log, then
// proxy_protocol with opts, then echo; its log is JSON.
type front struct {
	*plugintest.Harness
	t *testing.T
}

func newFront(t *testing.T, network, address, opts string) *front {
	t.Helper()
	h := plugintest.NewHarness(t, plugintest.Options{Level: hclog.Debug, JSON: true})
	h.Apply(fmt.Sprintf(`
listeners:
  - name: pp
    network: %s
    address: %s
    chain:
      - handler: log
      - handler: proxy_protocol
%s      - handler: echo
`, network, address, opts))
	return &front{Harness: h, t: t}
}

// ppHarness is an in-process sluice with one TCP listener "pp", on a
// loopback port of its choosing, whose chain is chain (YAML list items at
// the chain's indent, from a new line).
func ppHarness(t *testing.T, o plugintest.Options, chain string) *plugintest.Harness {
	t.Helper()
	h := plugintest.NewHarness(t, o)
	h.Apply(`
listeners:
  - name: pp
    network: tcp
    address: 127.0.0.1:0
    chain:` + chain)
	return h
}

// rejected returns sluice_proxy_protocol_rejected_total by reason.
func (f *front) rejected() map[string]float64 {
	f.t.Helper()
	m := map[string]float64{}
	for _, r := range reasons {
		m[r] = f.Metric("sluice_proxy_protocol_rejected_total", "listener", "pp", "reason", r)
	}
	return m
}

// wantRejected checks every reason's count: the one named is n, all others 0.
func (f *front) wantRejected(reason string, n float64) {
	f.t.Helper()
	for r, v := range f.rejected() {
		want := 0.0
		if r == reason {
			want = n
		}
		if v != want {
			f.t.Errorf("rejected{reason=%s} = %v, want %v", r, v, want)
		}
	}
}

// remotes returns the remote field of every access log record.
func (f *front) remotes() []string {
	f.t.Helper()
	f.WaitIdle("pp")
	var out []string
	for _, r := range f.Records("connection closed") {
		if m, _ := r["@module"].(string); strings.HasSuffix(m, ".log") {
			out = append(out, fmt.Sprint(r["remote"]))
		}
	}
	return out
}

func dial(t *testing.T, network, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// writeAll writes each part in its own write, pause apart, so that they
// arrive as separate segments.
func writeAll(t *testing.T, c net.Conn, pause time.Duration, parts ...[]byte) {
	t.Helper()
	for i, p := range parts {
		if i > 0 {
			time.Sleep(pause)
		}
		if _, err := c.Write(p); err != nil {
			t.Fatalf("write part %d: %v", i, err)
		}
	}
}

// echoed half-closes c and reads everything sluice sends back.
func echoed(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.(interface{ CloseWrite() error }).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// closed checks that sluice closed c without sending anything.
func closed(t *testing.T, c net.Conn) {
	t.Helper()
	b, err := io.ReadAll(c)
	if len(b) > 0 {
		t.Fatalf("read %q, want the connection closed", b)
	}
	if err != nil && !isReset(err) {
		t.Fatalf("read: %v, want EOF or a reset", err)
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func ioReadFull(c net.Conn, b []byte) (int, error) { return io.ReadFull(c, b) }
