package proxy_test

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluice-dev/sluice/internal/haproxytest"
	"github.com/sluice-dev/sluice/internal/testcert"
)

// TestTLSWithProxyProtocolToHAProxy: sluice's send_proxy_protocol with
// tls is what HAProxy's `bind ... accept-proxy ssl` expects: the header in
// clear, then TLS, verified for the name on HAProxy's certificate. HAProxy
// passes the client's address on to the backend with its own header.
func TestTLSWithProxyProtocolToHAProxy(t *testing.T) {
	haproxytest.Bin(t) // skip before making certificates
	dir := t.TempDir()
	ca := testcert.NewCA(t, "sluice test CA")
	leaf := ca.Issue(t, testcert.Options{Names: []string{"haproxy.test"}})
	crt := writeFile(t, dir, "haproxy.pem", append(append([]byte{}, leaf.CertPEM...), leaf.KeyPEM...))
	caFile := writeFile(t, dir, "ca.pem", ca.PEM)

	// The backend reads HAProxy's header, names the client it carries,
	// then echoes until EOF.
	backend := serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		hd, err := proxyproto.Read(r)
		if err != nil {
			_, _ = io.WriteString(c, "no header: "+err.Error())
			return
		}
		_, _ = io.WriteString(c, "from "+hd.SourceAddr.String()+"\n")
		_, _ = io.Copy(c, r)
		closeWrite(c)
	})
	front := deadAddr(t)
	haproxytest.Start(t, front, `
frontend tls_in
  bind `+front+` accept-proxy ssl crt `+crt+`
  default_backend echo
backend echo
  server b1 `+backend.ln.Addr().String()+` send-proxy-v2
`)

	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+front)+
		"        send_proxy_protocol: v2\n"+tlsYAML("server_name: haproxy.test", "ca: "+caFile)))
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err := d.Dial("tcp", h.Addr("front"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "through haproxy")
	closeWrite(c)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, got)
	}
	if want := "from " + c.LocalAddr().String() + "\nthrough haproxy"; string(got) != want {
		t.Fatalf("got %q, want %q\nsluice log:\n%s", got, want, h.Log())
	}
}
