package tlsterm_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/pkg/config"
	tlsterm "github.com/sluice-dev/sluice/plugins/tls"
)

// TestValidate: every problem is reported at load, under its key path,
// in one run.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	aCert, aKey := pair(t, ca, dir, "a", "a.test")
	_, bKey := pair(t, ca, dir, "b", "b.test")
	garbage := filepath.Join(dir, "garbage.pem")
	testcert.WriteFile(t, garbage, []byte("not a certificate\n"))
	missing := filepath.Join(dir, "missing.pem")
	fifo := filepath.Join(dir, "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		opts string
		want []string // each a line of the error
	}{
		{"no certificates", "        alpn: [h2]\n", []string{"listeners[0].chain[1] (tls): certificates: at least one {cert, key} is required"}},
		{"every problem at once", certOpts(missing, aKey, "\"\"", "\"\"", aCert, bKey, aCert, missing, garbage, aKey) +
			"        min_version: \"1.1\"\n        client_ca: " + garbage + "\n        handshake_timeout: -1s\n        alpn: [\"\"]\n",
			[]string{
				"certificates[0].cert: open " + missing + ": no such file or directory",
				"certificates[1].cert: required",
				"certificates[1].key: required",
				"certificates[2]: " + aCert + ", " + bKey + ": tls: private key does not match public key",
				"certificates[3].key: open " + missing,
				"certificates[4]: " + garbage + ", " + aKey + ": tls: failed to find any PEM data in certificate input",
				`min_version: "1.1" is not supported`,
				"client_ca: " + garbage + ": no PEM certificate in it",
				"handshake_timeout: must be > 0",
				"alpn[0]: a protocol name is 1 to 255 bytes",
			}},
		// A wrong path can neither hang a reload (a FIFO's open blocks
		// until a writer comes) nor exhaust memory (/dev/zero never
		// ends): neither is read.
		{"a FIFO and a device", certOpts(fifo, aKey, aCert, "/dev/zero") + "        client_ca: /dev/zero\n",
			[]string{
				"certificates[0].cert: " + fifo + ": not a regular file (a named pipe)",
				"certificates[1].key: /dev/zero: not a regular file (a character device)",
				"client_ca: /dev/zero: not a regular file (a character device)",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("test.yaml", []byte(yamlConfig(tc.opts, "      - handler: echo\n")))
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
	t.Run("udp", func(t *testing.T) {
		_, err := config.Parse("test.yaml", []byte(fmt.Sprintf(`
listeners:
  - name: u
    network: udp
    address: 127.0.0.1:0
    chain:
      - handler: tls
%s      - handler: echo
`, certOpts(aCert, aKey))))
		if err == nil || !strings.Contains(err.Error(), `handler "tls" does not work on udp listeners`) {
			t.Fatalf("err = %v, want tls refused on udp", err)
		}
	})
}

// TestStatusAndExpiry: a certificate that expires within 7 days is a
// warning at load and expiring in /status; /status names every
// certificate with its expiry and load time, and the expiry metric has
// one series per certificate.
func TestStatusAndExpiry(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	soon := ca.Issue(t, testcert.Options{Names: []string{"soon.test", "www.soon.test"}, NotAfter: time.Now().Add(3 * 24 * time.Hour)})
	later := ca.Issue(t, testcert.Options{Names: []string{"later.test"}})
	sCert, sKey := soon.Write(t, dir, "soon")
	lCert, lKey := later.Write(t, dir, "later")
	before := time.Now()
	f := newFront(t, certOpts(sCert, sKey, lCert, lKey))

	warns := f.Records("certificate expires soon")
	if len(warns) != 1 || warns[0]["cert"] != sCert || warns[0]["@level"] != "warn" {
		t.Errorf("expiry warnings = %v, want one naming %s", warns, sCert)
	}
	var st tlsterm.Status
	for _, l := range f.Supervisor.Status() {
		for _, h := range l.Handlers {
			if h.Handler == "tls" {
				st = h.Status.(tlsterm.Status)
			}
		}
	}
	if len(st.Certificates) != 2 {
		t.Fatalf("status = %+v, want two certificates", st)
	}
	for i, tc := range []struct {
		leaf     *testcert.Leaf
		cert     string
		names    string
		expiring bool
	}{{soon, sCert, "soon.test,www.soon.test", true}, {later, lCert, "later.test", false}} {
		cs := st.Certificates[i]
		if cs.Cert != tc.cert || strings.Join(cs.Names, ",") != tc.names || cs.Expiring != tc.expiring ||
			!cs.NotAfter.Equal(tc.leaf.Cert.NotAfter) || cs.LoadedAt.Before(before.Add(-time.Second)) {
			t.Errorf("status certificate %d = %+v", i, cs)
		}
		if got := f.Metric("sluice_tls_certificate_expiry_timestamp_seconds", "listener", "t", "names", tc.names); got != float64(tc.leaf.Cert.NotAfter.Unix()) {
			t.Errorf("expiry{names=%s} = %v, want %d", tc.names, got, tc.leaf.Cert.NotAfter.Unix())
		}
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"names":`, `"not_after":`, `"loaded_at":`, `"expiring":true`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("status JSON %s has no %s", b, k)
		}
	}
}
