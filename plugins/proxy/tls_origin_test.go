package proxy_test

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/pkg/config"
)

// tlsUpstream is a Go TLS server made for one test: its CA file, and the
// server config it serves with (certificate for backend.test).
type tlsUpstream struct {
	caFile string
	cfg    *tls.Config
}

func newTLSUpstream(t *testing.T) tlsUpstream {
	t.Helper()
	ca := testcert.NewCA(t, "sluice test CA")
	leaf := ca.Issue(t, testcert.Options{Names: []string{"backend.test"}})
	return tlsUpstream{
		caFile: writeFile(t, t.TempDir(), "ca.pem", ca.PEM),
		cfg:    &tls.Config{Certificates: []tls.Certificate{leaf.TLS(t)}, MinVersion: tls.VersionTLS12},
	}
}

func (u tlsUpstream) opts(extra ...string) string {
	return tlsYAML(append([]string{"server_name: backend.test", "ca: " + u.caFile}, extra...)...)
}

// TestTLSBulkAndHalfClose: 8 MiB each way through an upstream inside
// TLS arrive byte-exact; the client's half-close reaches the upstream
// (close_notify) and the upstream's answer still comes back, then its
// own close_notify reaches the client as EOF.
func TestTLSBulkAndHalfClose(t *testing.T) {
	u := newTLSUpstream(t)
	up := tlsServe(t, u.cfg, func(c *tls.Conn) { echoConn(c) })
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())+u.opts()))

	payload := make([]byte, 8<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	var got []byte
	var rerr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		got, rerr = io.ReadAll(c)
	}()
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	closeWrite(c)
	wg.Wait()
	if rerr != nil {
		t.Fatalf("read: %v", rerr)
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("got %d bytes back, want the %d sent, byte-exact", len(got), len(payload))
	}
	h.WaitIdle("front")
	if in, out := h.bytes("front", "in"), h.bytes("front", "out"); in != float64(len(payload)) || out != float64(len(payload)) {
		t.Errorf("bytes in/out = %v/%v, want %d each", in, out, len(payload))
	}
}

// TestTLSUpstreamHalfCloses: an upstream that says its piece and
// half-closes (close_notify) leaves the client able to send; what it
// sends then still reaches the upstream.
func TestTLSUpstreamHalfCloses(t *testing.T) {
	u := newTLSUpstream(t)
	late := make(chan string, 1)
	up := tlsServe(t, u.cfg, func(c *tls.Conn) {
		_, _ = io.WriteString(c, "bye")
		_ = c.CloseWrite()
		b, _ := io.ReadAll(c)
		late <- string(b)
	})
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())+u.opts()))
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "bye" {
		t.Fatalf("read %q, %v; want bye then EOF", b, err)
	}
	if _, err := io.WriteString(c, "late words"); err != nil {
		t.Fatal(err)
	}
	closeWrite(c)
	select {
	case s := <-late:
		if s != "late words" {
			t.Fatalf("upstream read %q after its half-close, want late words", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never saw the client's end")
	}
}

// TestTLSWithProxyProtocol: with send_proxy_protocol, the PROXY header
// comes first, in clear, and TLS after it.
func TestTLSWithProxyProtocol(t *testing.T) {
	u := newTLSUpstream(t)
	got := make(chan seen, 1)
	up := serve(t, listenTCP(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		hd, err := proxyproto.Read(r)
		if err != nil {
			got <- seen{err: err}
			return
		}
		// What follows the header, buffered or not, is the TLS stream.
		tc := tls.Server(&prefixed{Conn: c, r: r}, u.cfg)
		b, err := io.ReadAll(tc)
		if err == nil {
			_, _ = io.WriteString(tc, strings.ToUpper(string(b)))
			_ = tc.CloseWrite()
		}
		got <- seen{header: hd, data: string(b), err: err}
	})
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())+
		"        send_proxy_protocol: v2\n"+u.opts()))
	c, err := net.DialTimeout("tcp", h.Addr("front"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.WriteString(c, "secret")
	closeWrite(c)
	back, _ := io.ReadAll(c)
	s := <-got
	if s.err != nil {
		t.Fatalf("upstream: %v", s.err)
	}
	if s.header.Version != 2 || s.header.SourceAddr.String() != c.LocalAddr().String() {
		t.Errorf("header v%d from %v, want v2 from %v", s.header.Version, s.header.SourceAddr, c.LocalAddr())
	}
	if s.data != "secret" || string(back) != "SECRET" {
		t.Errorf("upstream read %q and the client got %q back, want secret and SECRET", s.data, back)
	}
}

// prefixed reads through r (which holds what was read past the PROXY
// header) and writes to the connection.
type prefixed struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefixed) Read(b []byte) (int, error) { return p.r.Read(b) }

// TestTLSResumption: the proxy keeps the sessions its upstream hands out,
// so the next connection to it resumes instead of a full handshake.
func TestTLSResumption(t *testing.T) {
	u := newTLSUpstream(t)
	resumed := make(chan bool, 8)
	up := tlsServe(t, u.cfg, func(c *tls.Conn) {
		resumed <- c.ConnectionState().DidResume
		echoConn(c)
	})
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())+u.opts()))
	var got []bool
	for range 3 {
		if s := roundTrip(t, "tcp", h.Addr("front"), "x"); s != "x" {
			t.Fatalf("got %q, want x", s)
		}
		got = append(got, <-resumed)
	}
	if got[0] || !got[1] || !got[2] {
		t.Fatalf("resumed = %v, want a full handshake, then resumed ones", got)
	}
}

// TestTLSHandshakeTimeout: an upstream that accepts and never answers
// the ClientHello fails within connect_timeout, like a connect that hangs.
func TestTLSHandshakeTimeout(t *testing.T) {
	hold := make(chan struct{})
	up := serve(t, listenTCP(t), func(c net.Conn) { <-hold })
	t.Cleanup(func() { close(hold) })
	upURL := "tcp://" + up.ln.Addr().String()
	u := newTLSUpstream(t)
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(upURL)+"        connect_timeout: 300ms\n"+u.opts()))
	start := time.Now()
	refused(t, h.Addr("front"))
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("client closed after %v, want about connect_timeout (300ms)", d)
	}
	h.WaitIdle("front")
	if n := h.upstreamErrors("front", upURL); n != 1 {
		t.Errorf("sluice_upstream_errors_total = %v, want 1", n)
	}
	if !strings.Contains(h.Log(), "tls handshake timed out") {
		t.Errorf("log lacks the timeout:\n%s", h.Log())
	}
}

// TestTLSHealthCheck: with tls, a check is a verified handshake: a plain
// upstream (one that accepts connects but speaks no TLS) is taken down,
// a TLS one stays up, and /status says tls.
func TestTLSHealthCheck(t *testing.T) {
	u := newTLSUpstream(t)
	good := tlsServe(t, u.cfg, func(c *tls.Conn) { _, _ = io.Copy(io.Discard, c) })
	plain := serve(t, listenTCP(t), echoConn)
	goodURL, plainURL := "tcp://"+good.ln.Addr().String(), "tcp://"+plain.ln.Addr().String()
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(goodURL, plainURL)+healthYAML+u.opts()))
	waitFor(t, "the plain upstream down", 10*time.Second, func() bool { return h.lines("upstream down", plainURL) == 1 })
	waitFor(t, "the TLS upstream up", 10*time.Second, func() bool { return h.lines("upstream up", goodURL) == 1 })
	if h.upstreamUp(plainURL) != 0 || h.upstreamUp(goodURL) != 1 {
		t.Errorf("sluice_upstream_up = %v (plain), %v (tls), want 0 and 1", h.upstreamUp(plainURL), h.upstreamUp(goodURL))
	}
	var st struct {
		Upstreams []struct {
			URL       string `json:"url"`
			TLS       bool   `json:"tls"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
		} `json:"upstreams"`
	}
	b, err := json.Marshal(h.Supervisor.Status()[0].Handlers[0].Status)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	for _, us := range st.Upstreams {
		if !us.TLS {
			t.Errorf("%s: /status tls = false, want true", us.URL)
		}
		if us.URL == plainURL && (us.State != "down" || !strings.Contains(us.LastError, "tls")) {
			t.Errorf("plain upstream: state %s, last_error %q; want down with the TLS error", us.State, us.LastError)
		}
	}
}

// TestTLSValidation: the tls option's files are read and checked at
// load, every problem named under its key.
func TestTLSValidation(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "sluice test CA")
	caFile := writeFile(t, dir, "ca.pem", ca.PEM)
	notPEM := writeFile(t, dir, "not.pem", []byte("hello"))
	a := ca.Issue(t, testcert.Options{Names: []string{"a.test"}})
	b := ca.Issue(t, testcert.Options{Names: []string{"b.test"}})
	aCert := writeFile(t, dir, "a.pem", a.CertPEM)
	bKey := writeFile(t, dir, "b.key", b.KeyPEM)
	missing := dir + "/missing.pem"
	fifo := dir + "/fifo.pem"
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, network, upstreams, opts string
		want                           []string
	}{
		{"missing ca", "tcp", "[tcp://127.0.0.1:1]", tlsYAML("ca: " + missing),
			[]string{"(proxy): tls.ca: open " + missing + ": no such file or directory"}},
		{"ca without certificates", "tcp", "[tcp://127.0.0.1:1]", tlsYAML("ca: " + notPEM),
			[]string{"(proxy): tls.ca: " + notPEM + " holds no PEM certificate"}},
		{"ca is a fifo", "tcp", "[tcp://127.0.0.1:1]", tlsYAML("ca: " + fifo),
			[]string{"(proxy): tls.ca: " + fifo + ": not a regular file"}},
		{"ca is a directory", "tcp", "[tcp://127.0.0.1:1]", tlsYAML("ca: " + dir),
			[]string{"(proxy): tls.ca: " + dir + ": not a regular file"}},
		{"cert without key", "tcp", "[tcp://127.0.0.1:1]", tlsYAML("cert: " + aCert),
			[]string{"(proxy): tls.key: required with tls.cert"}},
		{"key without cert", "tcp", "[tcp://127.0.0.1:1]", tlsYAML("key: " + bKey),
			[]string{"(proxy): tls.cert: required with tls.key"}},
		{"key of another cert", "tcp", "[tcp://127.0.0.1:1]", tlsYAML("cert: "+aCert, "key: "+bKey),
			[]string{"(proxy): tls.cert: " + aCert + " with key " + bKey + ": tls: private key does not match public key"}},
		{"unix without server_name", "tcp", "[tcp://127.0.0.1:1, unix:///run/x.sock]", tlsYAML("ca: " + caFile),
			[]string{"(proxy): tls.server_name: required with a unix:// upstream (unix:///run/x.sock)"}},
		{"on udp", "udp", "[udp://127.0.0.1:53]", tlsYAML("ca: " + caFile),
			[]string{"(proxy): tls: is for stream listeners (tcp, unix)"}},
		{"unknown key", "tcp", "[tcp://127.0.0.1:1]", tlsYAML("verify: false"),
			[]string{"tls.verify: unknown key"}},
		{"all at once", "tcp", "[unix:///run/x.sock]", tlsYAML("ca: "+missing, "cert: "+aCert), []string{
			"tls.ca: open", "tls.key: required with tls.cert", "tls.server_name: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := frontYAML(tt.network, "127.0.0.1:7000", "0", "      - handler: proxy\n        upstreams: "+tt.upstreams+"\n"+tt.opts)
			_, err := config.Parse("test.yaml", []byte(yaml))
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}

	// What is valid: a unix upstream with server_name, or insecure; a
	// client pair; the system pool.
	for _, ok := range []string{
		"      - handler: proxy\n        upstreams: [unix:///run/x.sock]\n" + tlsYAML("server_name: app.internal", "ca: "+caFile),
		"      - handler: proxy\n        upstreams: [unix:///run/x.sock]\n" + tlsYAML("insecure_skip_verify: true"),
		"      - handler: proxy\n        upstreams: [tcp://127.0.0.1:1]\n" + tlsYAML("cert: "+aCert, "key: "+writeFile(t, dir, "a.key", a.KeyPEM)),
		"      - handler: proxy\n        upstreams: [tcp://localhost:1]\n        tls: {}\n",
	} {
		if _, err := config.Parse("test.yaml", []byte(frontYAML("tcp", "127.0.0.1:7000", "0", ok))); err != nil {
			t.Errorf("refused:\n%s\n%v", ok, err)
		}
	}
}

// TestTLSClientCertificateRenewed: a client certificate renewed on disk
// is presented from the next handshake without a reload (here by a
// rename over it, and by a write in place), and a broken new pair is
// logged and leaves the last good one presented.
func TestTLSClientCertificateRenewed(t *testing.T) {
	u := newTLSUpstream(t)
	clientCA := testcert.NewCA(t, "client CA")
	cfg := u.cfg.Clone()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = clientCA.Pool()
	// Without tickets every connection is a full handshake that asks
	// for the certificate again.
	cfg.SessionTicketsDisabled = true
	names := make(chan string, 8)
	up := tlsServe(t, cfg, func(c *tls.Conn) {
		names <- c.ConnectionState().PeerCertificates[0].Subject.CommonName
		echoConn(c)
	})
	dir := t.TempDir()
	certFile, keyFile := clientCA.Issue(t, testcert.Options{CN: "first", Client: true}).Write(t, dir, "client")
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://"+up.ln.Addr().String())+
		u.opts("cert: "+certFile, "key: "+keyFile)))
	presented := func() string {
		t.Helper()
		if s := roundTrip(t, "tcp", h.Addr("front"), "x"); s != "x" {
			t.Fatalf("got %q, want x\n%s", s, h.Log())
		}
		select {
		case n := <-names:
			return n
		case <-time.After(10 * time.Second):
			t.Fatal("the upstream saw no certificate")
		}
		return ""
	}
	if n := presented(); n != "first" {
		t.Fatalf("presented %s, want first", n)
	}

	// Renewed by rename, as certbot and atomic writers do.
	second := clientCA.Issue(t, testcert.Options{CN: "second", Client: true})
	tmpCert, tmpKey := second.Write(t, dir, "new")
	if err := os.Rename(tmpKey, keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpCert, certFile); err != nil {
		t.Fatal(err)
	}
	if n := presented(); n != "second" {
		t.Fatalf("after a rename: presented %s, want second", n)
	}

	// Written in place.
	third := clientCA.Issue(t, testcert.Options{CN: "third", Client: true})
	writeFile(t, dir, "client.key", third.KeyPEM)
	writeFile(t, dir, "client.pem", third.CertPEM)
	if n := presented(); n != "third" {
		t.Fatalf("after a write in place: presented %s, want third", n)
	}

	// A certificate whose key is another's: refused, the last good pair
	// stays, one error line however many handshakes.
	writeFile(t, dir, "client.pem", clientCA.Issue(t, testcert.Options{CN: "fourth", Client: true}).CertPEM)
	for range 2 {
		if n := presented(); n != "third" {
			t.Fatalf("after a broken pair: presented %s, want third still", n)
		}
	}
	if n := strings.Count(h.Log(), "tls client certificate changed on disk but cannot be used"); n != 1 {
		t.Fatalf("%d error lines about the broken pair, want 1:\n%s", n, h.Log())
	}
}

// TestTLSClientCertificateExpiry: a client certificate that ends within
// 7 days is warned about at load, one with weeks left is not.
func TestTLSClientCertificateExpiry(t *testing.T) {
	ca := testcert.NewCA(t, "client CA")
	dir := t.TempDir()
	soonCert, soonKey := ca.Issue(t, testcert.Options{CN: "soon", Client: true, NotAfter: time.Now().Add(3 * 24 * time.Hour)}).Write(t, dir, "soon")
	laterCert, laterKey := ca.Issue(t, testcert.Options{CN: "later", Client: true, NotAfter: time.Now().Add(30 * 24 * time.Hour)}).Write(t, dir, "later")
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://127.0.0.1:1")+tlsYAML("cert: "+laterCert, "key: "+laterKey)))
	if strings.Contains(h.Log(), "tls client certificate expires soon") {
		t.Fatalf("warned about a certificate with 30 days left:\n%s", h.Log())
	}
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("tcp://127.0.0.1:1")+tlsYAML("cert: "+soonCert, "key: "+soonKey)))
	if !strings.Contains(h.Log(), "[WARN]  sluice.supervisor.listener.proxy: tls client certificate expires soon: listener=front network=tcp cert="+soonCert) {
		t.Fatalf("no warning about a certificate with 3 days left:\n%s", h.Log())
	}
}

// TestTLSToUnixUpstream: TLS over a Unix socket, verified for the name
// server_name gives.
func TestTLSToUnixUpstream(t *testing.T) {
	u := newTLSUpstream(t)
	ln, path := listenUnix(t)
	serve(t, ln, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, u.cfg)
		echoConn(tc)
	})
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML("unix://"+path)+u.opts()))
	if got := roundTrip(t, "tcp", h.Addr("front"), "over unix"); got != "over unix" {
		t.Fatalf("got %q, want over unix\n%s", got, h.Log())
	}
}
