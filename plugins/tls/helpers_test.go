package tlsterm_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/pkg/plugintest"
	_ "github.com/sluice-dev/sluice/plugins/all"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// front is an in-process sluice with one listener "t": log, tls with
// opts (YAML lines indented under the handler), then the terminal term
// (echo unless given); its log is JSON.
type front struct {
	*plugintest.Harness
	t    *testing.T
	addr string
}

func newFront(t *testing.T, opts string, term ...string) *front {
	t.Helper()
	h := plugintest.NewHarness(t, plugintest.Options{Level: hclog.Debug, JSON: true})
	terminal := "      - handler: echo\n"
	if len(term) > 0 {
		terminal = term[0]
	}
	h.Apply(yamlConfig(opts, terminal))
	return &front{Harness: h, t: t, addr: h.Addr("t")}
}

func yamlConfig(opts, terminal string) string {
	return fmt.Sprintf(`
listeners:
  - name: t
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: log
      - handler: tls
%s%s`, opts, terminal)
}

// certOpts is the certificates option for pairs of files.
func certOpts(files ...string) string {
	var b strings.Builder
	b.WriteString("        certificates:\n")
	for i := 0; i+1 < len(files); i += 2 {
		fmt.Fprintf(&b, "          - cert: %s\n            key: %s\n", files[i], files[i+1])
	}
	return b.String()
}

// dialTLS connects and completes a handshake with cfg.
func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, nil
}

func mustDial(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	c, err := dialTLS(t, addr, cfg)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return c
}

// served is the leaf certificate a handshake with sni gets, unverified.
func served(t *testing.T, addr, sni string) *x509.Certificate {
	t.Helper()
	c := mustDial(t, addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// accessLog returns the log handler's records, once the listener is idle.
func (f *front) accessLog() []map[string]any {
	f.t.Helper()
	f.WaitIdle("t")
	var out []map[string]any
	for _, r := range f.Records("connection closed") {
		if m, _ := r["@module"].(string); strings.HasSuffix(m, ".log") {
			out = append(out, r)
		}
	}
	return out
}

func (f *front) handshakes(result string) float64 {
	return f.Metric("sluice_tls_handshakes_total", "listener", "t", "result", result)
}

// pair writes a new ECDSA leaf for names signed by ca under dir.
func pair(t *testing.T, ca *testcert.CA, dir, file string, names ...string) (string, string) {
	t.Helper()
	return ca.Issue(t, testcert.Options{Names: names}).Write(t, dir, file)
}
