package tlsterm_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/internal/testnet"
	tlsterm "github.com/sluice-dev/sluice/plugins/tls"
)

// reloadFailed is the error line of a pair that does not load.
const reloadFailed = "certificate reload failed; serving the last good one"

// rotateWithin is how soon after a renewal is written the next handshake
// must get it.
const rotateWithin = 2 * time.Second

// layout is one way an operator's tooling puts a pair on disk and
// replaces it.
type layout struct {
	name string
	// setup writes the first pair and returns the paths sluice is given.
	setup func(t *testing.T, dir string, l *testcert.Leaf) (cert, key string)
	// rotate puts l in place of the pair.
	rotate func(t *testing.T, dir string, l *testcert.Leaf)
}

var layouts = []layout{
	{
		// An editor, cp + mv, or certbot's --deploy-hook copying into
		// place: a new file renamed over the old.
		name: "rename",
		setup: func(t *testing.T, dir string, l *testcert.Leaf) (string, string) {
			return l.Write(t, dir, "site")
		},
		rotate: func(t *testing.T, dir string, l *testcert.Leaf) {
			for _, f := range []struct {
				name string
				data []byte
			}{{"site.pem", l.CertPEM}, {"site.key", l.KeyPEM}} {
				tmp := filepath.Join(dir, "."+f.name+".tmp")
				testcert.WriteFile(t, tmp, f.data)
				if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
					t.Fatal(err)
				}
			}
		},
	},
	{
		// cat new.pem > site.pem: the same inode truncated and written.
		name: "in place",
		setup: func(t *testing.T, dir string, l *testcert.Leaf) (string, string) {
			return l.Write(t, dir, "site")
		},
		rotate: func(t *testing.T, dir string, l *testcert.Leaf) {
			l.Write(t, dir, "site")
		},
	},
	{
		// A Kubernetes Secret or ConfigMap volume: tls.crt is a symlink
		// to ..data/tls.crt, and ..data is a symlink re-pointed by a
		// rename to a new timestamped directory; the old one is removed.
		name: "symlink swap",
		setup: func(t *testing.T, dir string, l *testcert.Leaf) (string, string) {
			writeGeneration(t, dir, "..2026_01", l)
			symlink(t, "..2026_01", filepath.Join(dir, "..data"))
			symlink(t, "..data/tls.crt", filepath.Join(dir, "tls.crt"))
			symlink(t, "..data/tls.key", filepath.Join(dir, "tls.key"))
			return filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
		},
		rotate: func(t *testing.T, dir string, l *testcert.Leaf) {
			old, err := os.Readlink(filepath.Join(dir, "..data"))
			if err != nil {
				t.Fatal(err)
			}
			gen := "..2026_" + time.Now().Format("150405.000000000")
			writeGeneration(t, dir, gen, l)
			symlink(t, gen, filepath.Join(dir, "..data_tmp"))
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		},
	},
}

func writeGeneration(t *testing.T, dir, gen string, l *testcert.Leaf) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, gen), 0o755); err != nil {
		t.Fatal(err)
	}
	testcert.WriteFile(t, filepath.Join(dir, gen, "tls.crt"), l.CertPEM)
	testcert.WriteFile(t, filepath.Join(dir, gen, "tls.key"), l.KeyPEM)
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// waitServed polls handshakes until the certificate served for sni is
// want, and returns how long that took; it fails the test after limit.
func waitServed(t *testing.T, addr, sni string, want *testcert.Leaf, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := served(t, addr, sni)
		if got.SerialNumber.Cmp(want.Cert.SerialNumber) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("after %s the handshake still gets serial %v, want %v", limit, got.SerialNumber, want.Cert.SerialNumber)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRotation replaces a pair each way an operator's tooling does, with
// connections open: the next handshake gets the new certificate within
// rotateWithin, the open connections keep echoing on theirs, and nothing
// is logged as failed.
func TestRotation(t *testing.T) {
	for _, lay := range layouts {
		t.Run(lay.name, func(t *testing.T) {
			dir := t.TempDir()
			ca := testcert.NewCA(t, "root")
			first := ca.Issue(t, testcert.Options{Names: []string{"a.test"}})
			cert, key := lay.setup(t, dir, first)
			f := newFront(t, certOpts(cert, key))
			cfg := &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()}
			var open []*tls.Conn
			for range 3 {
				c := mustDial(t, f.addr, cfg)
				testnet.MustEcho(t, c, "before")
				open = append(open, c)
			}
			loadedBefore := loadedAt(t, f)

			for gen := range 2 { // twice: the watch survives its first swap
				next := ca.Issue(t, testcert.Options{Names: []string{"a.test"}})
				lay.rotate(t, dir, next)
				if took := waitServed(t, f.addr, "a.test", next, rotateWithin); took > rotateWithin {
					t.Errorf("generation %d served %s after the write", gen+1, took)
				}
				for i, c := range open {
					testnet.MustEcho(t, c, "still here")
					if c.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
						t.Errorf("open connection %d changed certificate", i)
					}
				}
				if got := f.Metric("sluice_tls_certificate_expiry_timestamp_seconds", "listener", "t", "names", "a.test"); got != float64(next.Cert.NotAfter.Unix()) {
					t.Errorf("expiry metric = %v, want %d", got, next.Cert.NotAfter.Unix())
				}
			}
			if !loadedAt(t, f).After(loadedBefore) {
				t.Errorf("status loaded_at did not move on")
			}
			for _, c := range open {
				_ = c.Close()
			}
			f.WaitIdle("t")
			if strings.Contains(f.Log(), "certificate reload failed") {
				t.Errorf("a reload failed:\n%s", f.Log())
			}
			if n := len(f.Records("certificate reloaded")); n < 2 {
				t.Errorf("%d \"certificate reloaded\" lines, want at least 2", n)
			}
		})
	}
}

// TestBrokenRenewalKeepsTheOld: a new certificate that does not parse,
// and one that does not match the key, are each logged as an error and
// the last good pair stays served; a good one after them is served.
func TestBrokenRenewalKeepsTheOld(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	first := ca.Issue(t, testcert.Options{Names: []string{"a.test"}})
	cert, key := first.Write(t, dir, "site")
	f := newFront(t, certOpts(cert, key))

	for i, broken := range [][]byte{
		[]byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"),
		ca.Issue(t, testcert.Options{Names: []string{"a.test"}}).CertPEM, // another key's
	} {
		testcert.WriteFile(t, cert, broken)
		deadline := time.Now().Add(10 * time.Second)
		for len(f.Records(reloadFailed)) < i+1 {
			if time.Now().After(deadline) {
				t.Fatalf("no error logged for broken certificate %d:\n%s", i+1, f.Log())
			}
			time.Sleep(20 * time.Millisecond)
		}
		rec := f.Records(reloadFailed)[i]
		if rec["@level"] != "error" || rec["cert"] != cert || rec["key"] != key {
			t.Errorf("error line = %v, want level error naming %s and %s", rec, cert, key)
		}
		if got := served(t, f.addr, "a.test"); got.SerialNumber.Cmp(first.Cert.SerialNumber) != 0 {
			t.Fatalf("after broken certificate %d the handshake gets serial %v, want the last good one", i+1, got.SerialNumber)
		}
	}
	good := ca.Issue(t, testcert.Options{Names: []string{"a.test"}})
	good.Write(t, dir, "site")
	waitServed(t, f.addr, "a.test", good, rotateWithin)
}

func loadedAt(t *testing.T, f *front) time.Time {
	t.Helper()
	for _, l := range f.Supervisor.Status() {
		for _, h := range l.Handlers {
			if st, ok := h.Status.(tlsterm.Status); ok {
				return st.Certificates[0].LoadedAt
			}
		}
	}
	t.Fatal("no tls handler in /status")
	return time.Time{}
}
