package proxy_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluice-dev/sluice/internal/testcert"
)

// mtlsExample is the README's mTLS example: its paths are the user's, so
// the README walk of plugins/all leaves it out (the info string is not
// just "yaml") and this test runs it with files of its own.
var mtlsExample = regexp.MustCompile("(?s)```yaml mtls\n(.*?)```")

// TestReadmeMTLSExample runs the README's mTLS example against an
// upstream that wants a PROXY header, then TLS with a client certificate
// from its CA, for the name payments.internal.
func TestReadmeMTLSExample(t *testing.T) {
	m := mtlsExample.FindStringSubmatch(string(mustRead(t, "README.md")))
	if m == nil {
		t.Fatal("README.md has no ```yaml mtls example")
	}
	dir := t.TempDir()
	serverCA, clientCA := testcert.NewCA(t, "payments CA"), testcert.NewCA(t, "clients CA")
	leaf := serverCA.Issue(t, testcert.Options{Names: []string{"payments.internal"}})
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS(t)}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCA.Pool()}
	type saw struct {
		src, cn string
		err     error
	}
	got := make(chan saw, 1)
	up := serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		hd, err := proxyproto.Read(r)
		if err != nil {
			got <- saw{err: err}
			return
		}
		tc := tls.Server(&prefixed{Conn: c, r: r}, cfg)
		if err := tc.Handshake(); err != nil {
			got <- saw{err: err}
			return
		}
		got <- saw{src: hd.SourceAddr.String(), cn: tc.ConnectionState().PeerCertificates[0].Subject.CommonName}
		echoConn(tc)
	})
	ccert, ckey := clientCA.Issue(t, testcert.Options{CN: "sluice", Client: true}).Write(t, dir, "sluice-client")
	yaml := strings.NewReplacer(
		"/etc/sluice/tls/payments-ca.pem", writeFile(t, dir, "payments-ca.pem", serverCA.PEM),
		"/etc/sluice/tls/sluice-client.pem", ccert,
		"/etc/sluice/tls/sluice-client.key", ckey,
		"tcp://10.0.0.7:8443", "tcp://"+up.ln.Addr().String(),
		"127.0.0.1:7300", "127.0.0.1:0",
	).Replace(m[1])
	h := newHarness(t)
	h.Apply(yaml)
	c, err := net.DialTimeout("tcp", h.Addr("payments"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "pay 10")
	closeWrite(c)
	back, err := io.ReadAll(c)
	if err != nil || string(back) != "pay 10" {
		t.Fatalf("got %q, %v back; want pay 10\n%s", back, err, h.Log())
	}
	s := <-got
	if s.err != nil || s.src != c.LocalAddr().String() || s.cn != "sluice" {
		t.Fatalf("upstream saw client %s, certificate %q, error %v; want %s and sluice", s.src, s.cn, s.err, c.LocalAddr())
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
