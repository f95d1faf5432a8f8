package proxy_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test; nothing of it is
// committed.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64 = 1

var serialMu sync.Mutex

func nextSerial() *big.Int {
	serialMu.Lock()
	defer serialMu.Unlock()
	serial++
	return big.NewInt(serial)
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issued is a leaf certificate and its key, as PEM, and as a tls pair.
type issued struct {
	certPEM, keyPEM []byte
	pair            tls.Certificate
}

// issue signs a leaf for names (DNS names, or IP addresses), usable by a
// server and a client alike.
func (ca *testCA) issue(t testing.TB, names ...string) issued {
	t.Helper()
	return ca.issueUntil(t, time.Now().Add(24*time.Hour), names...)
}

// issueUntil is issue with the certificate's end of validity.
func (ca *testCA) issueUntil(t testing.TB, notAfter time.Time, names ...string) issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	out := issued{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	if out.pair, err = tls.X509KeyPair(out.certPEM, out.keyPEM); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeFile writes b into dir/name and returns the path.
func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// files writes the leaf's certificate and key into dir as name.pem and
// name.key.
func (i issued) files(t testing.TB, dir, name string) (cert, key string) {
	t.Helper()
	return writeFile(t, dir, name+".pem", i.certPEM), writeFile(t, dir, name+".key", i.keyPEM)
}

// needOpenSSL skips the test when the openssl command is missing, and
// fails it under CI=true, where .ci/run installs it.
func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is missing; .ci/run installs it")
		}
		t.Skip("openssl is not installed (apt-get install openssl)")
	}
	return p
}

// sServer is a running `openssl s_server`: a real TLS upstream.
type sServer struct {
	addr string
	mu   sync.Mutex
	out  strings.Builder
}

func (s *sServer) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// startSServer runs `openssl s_server -rev` (each line it reads comes
// back reversed) on a loopback port of its choosing with the given
// certificate and extra arguments, and stops it at the test's cleanup.
func startSServer(t *testing.T, cert, key string, args ...string) *sServer {
	t.Helper()
	bin := needOpenSSL(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key, "-rev"}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	s := &sServer{}
	addr := make(chan string, 1)
	done := make(chan struct{})
	// The reader ends at the pipe's EOF, when s_server exits.
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.out.WriteString(line + "\n")
			s.mu.Unlock()
			if a, ok := strings.CutPrefix(line, "ACCEPT "); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
		_ = r.Close()
	})
	select {
	case s.addr = <-addr:
	case <-time.After(10 * time.Second):
		t.Fatalf("s_server did not start:\n%s", s.output())
	}
	return s
}

// tlsServe serves TLS with cfg on a loopback listener, running handle
// for every handshaken connection.
func tlsServe(t *testing.T, cfg *tls.Config, handle func(*tls.Conn)) *server {
	t.Helper()
	return serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		tc := tls.Server(c, cfg)
		if err := tc.Handshake(); err != nil {
			return
		}
		handle(tc)
	})
}
