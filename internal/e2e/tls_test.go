package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admintest"
	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/internal/testnet"
)

// tlsConfigText is a listener "t": tls with the Secret-style pair in dir
// and a second pair, then echo; admin on admin.
func tlsConfigText(admin, dir, extra string) string {
	return fmt.Sprintf(`log:
  level: debug
  format: json
admin:
  address: %q
listeners:
  - name: t
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: tls
        certificates:
          - cert: %[2]s/tls.crt
            key: %[2]s/tls.key
          - cert: %[2]s/b.pem
            key: %[2]s/b.key
%s      - handler: echo
`, admin, dir, extra)
}

// swapSecret writes l as a new generation of a Kubernetes Secret volume
// in dir (tls.crt → ..data/tls.crt, ..data → ..<gen>) and removes the
// previous generation, as the kubelet does.
func swapSecret(t *testing.T, dir string, gen int, l *testcert.Leaf) {
	t.Helper()
	name := fmt.Sprintf("..gen_%d", gen)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(dir, name), 0o755))
	testcert.WriteFile(t, filepath.Join(dir, name, "tls.crt"), l.CertPEM)
	testcert.WriteFile(t, filepath.Join(dir, name, "tls.key"), l.KeyPEM)
	must(os.Symlink(name, filepath.Join(dir, "..data_tmp")))
	must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	if gen == 0 {
		must(os.Symlink("..data/tls.crt", filepath.Join(dir, "tls.crt")))
		must(os.Symlink("..data/tls.key", filepath.Join(dir, "tls.key")))
		return
	}
	must(os.RemoveAll(filepath.Join(dir, fmt.Sprintf("..gen_%d", gen-1))))
}

// tlsServed is the serial of the certificate a handshake for sni gets,
// verified against ca.
func tlsServed(t *testing.T, addr, sni string, ca *testcert.CA) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, RootCAs: ca.Pool()})
	if err != nil {
		t.Fatalf("handshake for %s: %v", sni, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSCertificateRotation runs the binary with a tls listener whose
// certificate is a Kubernetes Secret volume and a second one renewed by
// rename: each renewal is served within 2 s with open connections still
// echoing, a config reload keeps the certificate store (no second expiry
// warning), and /status and /metrics show the certificates.
func TestTLSCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	swapSecret(t, dir, 0, ca.Issue(t, testcert.Options{Names: []string{"a.test"}}))
	soon := ca.Issue(t, testcert.Options{Names: []string{"b.test"}, NotAfter: time.Now().Add(72 * time.Hour), Format: testcert.RSAPKCS1})
	soon.Write(t, dir, "b")
	admin := admintest.FreeAddr(t, "127.0.0.1")
	base := "http://" + admin
	p := startConfig(t, tlsConfigText(admin, dir, ""), "--watch=false") // reloads by SIGHUP only
	addr := p.addr("t")
	p.mustLog("certificate expires soon", map[string]any{"cert": dir + "/b.pem"}, 5*time.Second)

	var open []*tls.Conn
	for _, sni := range []string{"a.test", "b.test"} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{ServerName: sni, RootCAs: ca.Pool()})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		testnet.MustEcho(t, c, "before")
		open = append(open, c)
	}

	renew := []func(gen int) *testcert.Leaf{
		func(gen int) *testcert.Leaf { // a.test: the kubelet swaps ..data
			l := ca.Issue(t, testcert.Options{Names: []string{"a.test"}})
			swapSecret(t, dir, gen, l)
			return l
		},
		func(int) *testcert.Leaf { // b.test: certbot's deploy hook copies and renames
			l := ca.Issue(t, testcert.Options{Names: []string{"b.test"}, Format: testcert.RSAPKCS1})
			for name, data := range map[string][]byte{"b.pem": l.CertPEM, "b.key": l.KeyPEM} {
				testcert.WriteFile(t, filepath.Join(dir, name+".new"), data)
				if err := os.Rename(filepath.Join(dir, name+".new"), filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			return l
		},
	}
	for gen := 1; gen <= 2; gen++ {
		for i, sni := range []string{"a.test", "b.test"} {
			l := renew[i](gen)
			want := l.Cert.SerialNumber.String()
			start := time.Now()
			for tlsServed(t, addr, sni, ca) != want {
				if time.Since(start) > 2*time.Second {
					t.Fatalf("%s generation %d not served 2s after the write; log:\n%s", sni, gen, p.output())
				}
				time.Sleep(20 * time.Millisecond)
			}
			for _, c := range open {
				testnet.MustEcho(t, c, fmt.Sprintf("after %s %d", sni, gen))
			}
		}
		if gen == 1 {
			// A config reload that keeps the handler and its files
			// keeps its store: the renewed certificates stay served,
			// nothing is re-read or re-warned.
			cfg := tlsConfigText(admin, dir, "        alpn: [http/1.1]\n")
			writeConfig(t, filepath.Dir(p.path), cfg)
			p.signal(syscall.SIGHUP)
			p.waitReload(cfg, 10*time.Second)
		}
	}
	if n := p.count("certificate expires soon"); n != 1 {
		t.Errorf("%d expiry warnings, want 1 (at start only)", n)
	}
	if n := p.count("certificate reload failed; serving the last good one"); n != 0 {
		t.Errorf("%d failed certificate reloads, want 0; log:\n%s", n, p.output())
	}

	st := admintest.Status(t, base)
	var certs []any
	for _, l := range st.Listeners {
		for _, h := range l.Handlers {
			if h.Handler == "tls" {
				certs, _ = h.Status.(map[string]any)["certificates"].([]any)
			}
		}
	}
	if len(certs) != 2 {
		t.Fatalf("/status tls certificates = %v, want 2", certs)
	}
	if b := certs[1].(map[string]any); b["expiring"] != false || fmt.Sprint(b["names"]) != "[b.test]" {
		t.Errorf("/status b.test = %v, want the renewed one, not expiring", b)
	}
	m := admintest.ScrapeMetrics(t, base)
	if v := m.Must(t, "sluice_tls_handshakes_total", "listener", "t", "result", "ok"); v < 10 {
		t.Errorf("handshakes{result=ok} = %v, want at least 10", v)
	}
	if _, ok := m.Value("sluice_tls_certificate_expiry_timestamp_seconds", "listener", "t", "names", "a.test"); !ok {
		t.Errorf("no expiry series for a.test")
	}
	for _, c := range open {
		_ = c.CloseWrite()
		if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
			t.Errorf("after close_notify: %q, %v; want a clean end", rest, err)
		}
	}
}
