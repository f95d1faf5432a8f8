package route_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/plugintest"
	_ "github.com/sluice-dev/sluice/plugins/all"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait bounds every wait on the network; generous for a loaded machine.
const wait = 10 * time.Second

// newSluice is an in-process sluice with the config given; its log is JSON.
func newSluice(t *testing.T, yaml string) *plugintest.Harness {
	t.Helper()
	h := plugintest.NewHarness(t, plugintest.Options{Level: hclog.Debug, JSON: true})
	h.Apply(yaml)
	return h
}

// routeConfig is a config whose one listener, front, is a TCP one on a
// loopback port of its choosing; its chain runs before (chain items, ""
// for none), then a route handler whose options and routes are table
// (YAML from a new line, at the handler's indent). Both are formats for
// args, as fmt.Sprintf's.
func routeConfig(before, table string, args ...any) string {
	return fmt.Sprintf(`
listeners:
  - name: front
    network: tcp
    address: 127.0.0.1:0
    chain:
`+before+"      - handler: route"+table, args...)
}

// Chain items to put before the route, for routeConfig.
const (
	withLog        = "      - handler: log\n"
	withLogPayload = withLog + "        payload: %v\n" // payload is the first of the args
)

// wantDecisions checks, once front is idle, that n connections were
// routed to route.
func wantDecisions(t testing.TB, s *plugintest.Harness, route string, n float64) {
	t.Helper()
	s.WaitIdle("front")
	if got := s.Metric("sluice_route_decisions_total", "listener", "front", "route", route); got != n {
		t.Errorf("decisions{route=%s} = %v, want %v", route, got, n)
	}
}

// certFor makes a self-signed certificate for name, so that a client can
// tell which upstream it completed its handshake with.
func certFor(t testing.TB, name string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsUpstream is a TLS echo server with a certificate for name, offering
// protos over ALPN.
func tlsUpstream(t testing.TB, name string, protos ...string) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{certFor(t, name)}, NextProtos: protos}
	return testnet.Serve(t, tls.NewListener(testnet.Listen(t, "tcp"), cfg), func(c net.Conn) {
		_, _ = io.Copy(c, c)
	})
}

// tagUpstream is a plain TCP server that answers with its tag and the
// first line it reads.
func tagUpstream(t testing.TB, tag string) string {
	t.Helper()
	return testnet.Serve(t, testnet.Listen(t, "tcp"), func(c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, tag+" "+line)
	})
}

// greeter speaks first, as SMTP or MySQL do: it writes its tag on accept,
// then echoes.
func greeter(t testing.TB, tag string) string {
	t.Helper()
	return testnet.Serve(t, testnet.Listen(t, "tcp"), func(c net.Conn) {
		_, _ = io.WriteString(c, tag+"\n")
		_, _ = io.Copy(c, c)
	})
}

// tlsDial completes a TLS handshake with sni through addr and returns the
// connection and the name on the certificate it got.
func tlsDial(t testing.TB, addr, sni string, protos ...string) (*tls.Conn, string) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	return tlsOver(t, raw, sni, protos...)
}

func tlsOver(t testing.TB, raw net.Conn, sni string, protos ...string) (*tls.Conn, string) {
	t.Helper()
	_ = raw.SetDeadline(time.Now().Add(wait))
	c := tls.Client(raw, &tls.Config{ServerName: sni, NextProtos: protos, InsecureSkipVerify: true})
	if err := c.Handshake(); err != nil {
		_ = raw.Close()
		t.Fatalf("handshake with sni %q: %v", sni, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// dribble writes what the client sends a few bytes at a time, each its
// own segment, so that the route must reassemble the ClientHello.
type dribble struct {
	net.Conn
	n int
}

func (d *dribble) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		k := min(d.n, len(p)-done)
		m, err := d.Conn.Write(p[done : done+k])
		done += m
		if err != nil {
			return done, err
		}
		time.Sleep(time.Millisecond)
	}
	return done, nil
}

func tlsClient(raw net.Conn, sni string) *tls.Conn {
	return tls.Client(raw, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
