package tlsterm_test

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// TestSNIPicksCertificate serves three certificates, each with another
// key type and format, one with an intermediate in its chain: each SNI
// gets its own, verified against the root; no SNI and an unknown name
// get the first.
func TestSNIPicksCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	inter := ca.Intermediate(t, "intermediate")
	aCert, aKey := ca.Issue(t, testcert.Options{Names: []string{"a.test"}, Format: testcert.ECDSASEC1}).Write(t, dir, "a")
	bCert, bKey := inter.Issue(t, testcert.Options{Names: []string{"b.test"}, Format: testcert.RSAPKCS1}).Write(t, dir, "b")
	cCert, cKey := ca.Issue(t, testcert.Options{Names: []string{"*.c.test"}, Format: testcert.RSAPKCS8}).Write(t, dir, "c")
	dCert, dKey := ca.Issue(t, testcert.Options{Names: []string{"d.test"}, Format: testcert.ECDSAPKCS8}).Write(t, dir, "d")
	f := newFront(t, certOpts(aCert, aKey, bCert, bKey, cCert, cKey, dCert, dKey))

	for _, tc := range []struct{ sni, want string }{
		{"a.test", "a.test"},
		{"b.test", "b.test"},
		{"x.c.test", "*.c.test"},
		{"D.TEST", "d.test"},
	} {
		t.Run(tc.sni, func(t *testing.T) {
			c := mustDial(t, f.addr, &tls.Config{ServerName: tc.sni, RootCAs: ca.Pool()})
			if got := c.ConnectionState().PeerCertificates[0].DNSNames; !slices.Equal(got, []string{tc.want}) {
				t.Fatalf("served %v, want %s", got, tc.want)
			}
			testnet.MustEcho(t, c, "hello "+tc.sni)
		})
	}
	for _, sni := range []string{"", "unknown.test", "y.x.c.test"} {
		if got := served(t, f.addr, sni).DNSNames; !slices.Equal(got, []string{"a.test"}) {
			t.Errorf("SNI %q: served %v, want the first certificate (a.test)", sni, got)
		}
	}
	f.WaitIdle("t") // the server counts once its side of the handshake is done
	if n := f.handshakes("ok"); n != 7 {
		t.Errorf("handshakes{result=ok} = %v, want 7", n)
	}
}

// TestALPNAndAccessLog: the offered protocol is negotiated, and the access
// log line names the version, cipher, SNI and protocol.
func TestALPNAndAccessLog(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	cert, key := pair(t, ca, dir, "a", "a.test")
	f := newFront(t, certOpts(cert, key)+"        alpn: [h2, http/1.1]\n")
	c := mustDial(t, f.addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}, MaxVersion: tls.VersionTLS12})
	if p := c.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
		t.Fatalf("negotiated %q, want http/1.1", p)
	}
	testnet.MustEcho(t, c, "x")
	_ = c.Close()
	if _, err := dialTLS(t, f.addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), NextProtos: []string{"imap"}}); err == nil {
		t.Error("a client offering only protocols not in alpn was served")
	}
	recs := f.accessLog()
	if len(recs) != 2 {
		t.Fatalf("access log = %v, want the served connection and the refused one", recs)
	}
	if recs[0]["error"] != nil {
		recs[0], recs[1] = recs[1], recs[0]
	}
	if recs[0]["error"] != nil || recs[1]["error"] == nil {
		t.Fatalf("access log = %v, want one served and one refused connection", recs)
	}
	want := map[string]string{"tls_version": "TLS 1.2", "sni": "a.test", "alpn": "http/1.1"}
	for k, v := range want {
		if recs[0][k] != v {
			t.Errorf("access log %s = %v, want %s", k, recs[0][k], v)
		}
	}
	if s, _ := recs[0]["tls_cipher"].(string); s == "" {
		t.Errorf("access log has no tls_cipher: %v", recs[0])
	}
}

// TestOldVersionsRefused: TLS 1.1 is refused by default, 1.2 under
// min_version 1.3; each refusal is counted as an error.
func TestOldVersionsRefused(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	cert, key := pair(t, ca, dir, "a", "a.test")
	for _, tc := range []struct {
		opts     string
		refused  uint16
		accepted uint16
	}{
		{"", tls.VersionTLS11, tls.VersionTLS12},
		{"        min_version: \"1.3\"\n", tls.VersionTLS12, tls.VersionTLS13},
	} {
		f := newFront(t, certOpts(cert, key)+tc.opts)
		if _, err := dialTLS(t, f.addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "a.test", MinVersion: tls.VersionTLS10, MaxVersion: tc.refused}); err == nil {
			t.Errorf("%s: handshake succeeded, want it refused", tls.VersionName(tc.refused))
		}
		c := mustDial(t, f.addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "a.test", MaxVersion: tc.accepted})
		testnet.MustEcho(t, c, "ok")
		_ = c.Close()
		f.WaitIdle("t")
		if n := f.handshakes("error"); n != 1 {
			t.Errorf("handshakes{result=error} = %v, want 1", n)
		}
	}
}

// TestClientCA: under client_ca a client without a certificate, and one
// whose certificate another CA signed, are refused; one the CA signed is
// served and its subject is on the access log.
func TestClientCA(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	clients := testcert.NewCA(t, "clients")
	other := testcert.NewCA(t, "other")
	cert, key := pair(t, ca, dir, "a", "a.test")
	testcert.WriteFile(t, dir+"/clients.pem", clients.PEM)
	f := newFront(t, certOpts(cert, key)+"        client_ca: "+dir+"/clients.pem\n")

	clientCert := func(ca *testcert.CA) []tls.Certificate {
		return []tls.Certificate{ca.Issue(t, testcert.Options{CN: "alice", Client: true}).TLS(t)}
	}
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "another CA": clientCert(other)} {
		c, err := dialTLS(t, f.addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), Certificates: certs})
		if err == nil {
			// TLS 1.3: the server's verdict comes after the client's
			// Finished, with the first read.
			_, err = c.Read(make([]byte, 1))
		}
		if err == nil {
			t.Errorf("%s: served, want refused", name)
		}
	}
	c := mustDial(t, f.addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool(), Certificates: clientCert(clients)})
	testnet.MustEcho(t, c, "mutual")
	_ = c.Close()
	var subjects []any
	for _, r := range f.accessLog() {
		if s, ok := r["client_subject"]; ok {
			subjects = append(subjects, s)
		}
	}
	if len(subjects) != 1 || subjects[0] != "CN=alice,O=sluice tests" {
		t.Errorf("client_subject on the access log = %v, want [CN=alice,O=sluice tests]", subjects)
	}
	if n := f.handshakes("error"); n != 2 {
		t.Errorf("handshakes{result=error} = %v, want 2", n)
	}
}

// TestBulkAndHalfClose sends 16 MiB through TLS to echo while reading
// the echo, then half-closes (close_notify): every byte comes back in
// order, and then the server's close_notify ends the stream cleanly.
func TestBulkAndHalfClose(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	cert, key := pair(t, ca, dir, "a", "a.test")
	f := newFront(t, certOpts(cert, key))
	c := mustDial(t, f.addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()})
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, 16<<20)
	_, _ = rand.Read(data)
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v (after %d bytes)", err, len(got))
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(data))
	}
	_ = c.Close()
	recs := f.accessLog()
	if len(recs) != 1 || recs[0]["error"] != nil {
		t.Fatalf("access log = %v, want one record without error", recs)
	}
}

// TestHandshakeTimeout: a client that connects and sends nothing is
// closed after handshake_timeout and counted.
func TestHandshakeTimeout(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	cert, key := pair(t, ca, dir, "a", "a.test")
	f := newFront(t, certOpts(cert, key)+"        handshake_timeout: 300ms\n")
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	n, err := c.Read(make([]byte, 1))
	took := time.Since(start)
	if n != 0 || err == nil {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
	if took < 250*time.Millisecond || took > 10*time.Second {
		t.Errorf("closed after %s, want about 300ms", took)
	}
	f.WaitIdle("t")
	if n := f.handshakes("timeout"); n != 1 {
		t.Errorf("handshakes{result=timeout} = %v, want 1", n)
	}
}

// TestUnixListener: TLS on a Unix stream socket, the client naming the
// server it wants.
func TestUnixListener(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	cert, key := pair(t, ca, dir, "a", "a.test")
	sock, err := os.MkdirTemp("", "sltls")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sock)
	h := plugintest.NewHarness(t, plugintest.Options{})
	h.Apply(strings.Replace(strings.Replace(yamlConfig(certOpts(cert, key), "      - handler: echo\n"),
		"network: tcp", "network: unix", 1), "127.0.0.1:0", filepath.Join(sock, "tls.sock"), 1))
	raw, err := net.DialTimeout("unix", filepath.Join(sock, "tls.sock"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()})
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	testnet.MustEcho(t, c, "over a unix socket")
}

// TestIdleTimeoutThroughTLS: the listener's idle_timeout ends a quiet
// TLS connection and leaves a busy one alone, read deadlines and all
// going through the *tls.Conn.
func TestIdleTimeoutThroughTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	cert, key := pair(t, ca, dir, "a", "a.test")
	h := plugintest.NewHarness(t, plugintest.Options{})
	h.Apply(strings.Replace(yamlConfig(certOpts(cert, key), "      - handler: echo\n"),
		"    chain:", "    idle_timeout: 400ms\n    chain:", 1))
	addr := h.Addr("t")
	cfg := &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()}

	busy := mustDial(t, addr, cfg)
	quiet := mustDial(t, addr, cfg)
	testnet.MustEcho(t, quiet, "then nothing")
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond {
		testnet.MustEcho(t, busy, "still busy")
		time.Sleep(100 * time.Millisecond)
	}
	if n, err := quiet.Read(make([]byte, 1)); err == nil || n != 0 {
		t.Fatalf("the quiet connection read %d bytes, %v; want it closed", n, err)
	}
	testnet.MustEcho(t, busy, "busy to the end")
}

// TestProxyHalfCloseThroughTLS: tls → proxy. The client's close_notify
// reaches the plaintext backend as an end of input; the backend answers
// after it, and its close reaches the client as a clean end. 4 MiB go
// each way, byte-exact.
func TestProxyHalfCloseThroughTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	up := make([]byte, 4<<20)
	down := make([]byte, 4<<20)
	_, _ = rand.Read(up)
	_, _ = rand.Read(down)
	backend := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			backend <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(c) // until the client's half-close
		if err == nil && !bytes.Equal(got, up) {
			err = io.ErrShortBuffer
		}
		if err == nil {
			_, err = c.Write(down)
		}
		backend <- err
	}()
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	cert, key := pair(t, ca, dir, "a", "a.test")
	f := newFront(t, certOpts(cert, key), "      - handler: proxy\n        upstreams: [tcp://"+ln.Addr().String()+"]\n")
	c := mustDial(t, f.addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool()})
	if _, err := c.Write(up); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-backend; err != nil {
		t.Fatalf("backend: %v", err)
	}
	if !bytes.Equal(got, down) {
		t.Fatalf("got %d bytes back, not the backend's %d", len(got), len(down))
	}
}
