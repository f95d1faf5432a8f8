package proxy_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testcert"
)

// tlsYAML is a proxy's tls option, lines already indented.
func tlsYAML(lines ...string) string {
	var b strings.Builder
	b.WriteString("        tls:\n")
	for _, l := range lines {
		b.WriteString("          " + l + "\n")
	}
	return b.String()
}

// TestTLSToOpenSSL: against a real `openssl s_server`, the proxy's
// handshake is verified against a test CA, by the name server_name gives
// or by default the upstream's host (here an IP address), and the bytes
// cross TLS both ways with the client's half-close passed on.
func TestTLSToOpenSSL(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "sluice test CA")
	caFile := writeFile(t, dir, "ca.pem", ca.PEM)
	cert, key := ca.Issue(t, testcert.Options{Names: []string{"backend.test", "127.0.0.1"}}).Write(t, dir, "backend")
	s := startSServer(t, cert, key)
	up := "tcp://" + s.addr

	for _, tc := range []struct{ name, opts string }{
		{"server_name", tlsYAML("server_name: backend.test", "ca: "+caFile)},
		{"default name is the host", tlsYAML("ca: " + caFile)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(up)+tc.opts))
			if got := roundTrip(t, "tcp", h.Addr("front"), "hello\nworld\n"); got != "olleh\ndlrow\n" {
				t.Fatalf("got %q through s_server -rev, want the lines reversed\nlog:\n%s\ns_server:\n%s", got, h.Log(), s.output())
			}
			if n := h.upstreamErrors("front", up); n != 0 {
				t.Errorf("sluice_upstream_errors_total = %v, want 0", n)
			}
			h.WaitIdle("front")
		})
	}
}

// refused dials the listener, sends a line and expects the connection to
// be closed without an answer.
func refused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("hello\n"))
	if err := closedByPeer(c); err != nil {
		t.Fatalf("want the connection closed without an answer: %v", err)
	}
}

// TestTLSVerificationRefuses: a certificate for another name, or from an
// unknown CA, fails the upstream like a refused connect: the client is
// closed, the error is counted, and the x509 reason is in the log.
func TestTLSVerificationRefuses(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "sluice test CA")
	other := testcert.NewCA(t, "someone else's CA")
	caFile := writeFile(t, dir, "ca.pem", ca.PEM)
	otherFile := writeFile(t, dir, "other.pem", other.PEM)
	cert, key := ca.Issue(t, testcert.Options{Names: []string{"backend.test"}}).Write(t, dir, "backend")
	s := startSServer(t, cert, key)
	up := "tcp://" + s.addr

	for _, tc := range []struct{ name, opts, reason string }{
		{"wrong name", tlsYAML("server_name: other.test", "ca: "+caFile),
			"x509: certificate is valid for backend.test, not other.test"},
		{"unknown CA", tlsYAML("server_name: backend.test", "ca: "+otherFile),
			"x509: certificate signed by unknown authority"},
		{"system pool", tlsYAML("server_name: backend.test"),
			"x509: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(up)+tc.opts))
			refused(t, h.Addr("front"))
			h.WaitIdle("front")
			if n := h.upstreamErrors("front", up); n != 1 {
				t.Errorf("sluice_upstream_errors_total = %v, want 1", n)
			}
			log := h.Log()
			if !strings.Contains(log, "upstream failed; skipping it") || !strings.Contains(log, tc.reason) {
				t.Errorf("log lacks the failure with %q:\n%s", tc.reason, log)
			}
		})
	}
}

// TestTLSFailover: an upstream whose certificate fails verification is
// skipped like one that refuses the connect; the same client is served
// by the next upstream.
func TestTLSFailover(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "sluice test CA")
	rogue := testcert.NewCA(t, "rogue CA")
	caFile := writeFile(t, dir, "ca.pem", ca.PEM)
	badCert, badKey := rogue.Issue(t, testcert.Options{Names: []string{"backend.test"}}).Write(t, dir, "bad")
	goodCert, goodKey := ca.Issue(t, testcert.Options{Names: []string{"backend.test"}}).Write(t, dir, "good")
	bad := "tcp://" + startSServer(t, badCert, badKey).addr
	good := "tcp://" + startSServer(t, goodCert, goodKey).addr
	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(bad, good)+
		tlsYAML("server_name: backend.test", "ca: "+caFile)+"        balance: round_robin\n"))
	for i := range 2 {
		if got := roundTrip(t, "tcp", h.Addr("front"), "abc\n"); got != "cba\n" {
			t.Fatalf("client %d got %q, want cba", i, got)
		}
	}
	if n := h.upstreamErrors("front", bad); n != 1 {
		t.Errorf("errors of the rogue upstream = %v, want 1 (then skipped for fail_timeout)", n)
	}
	if n := h.upstreamErrors("front", good); n != 0 {
		t.Errorf("errors of the good upstream = %v, want 0", n)
	}
}

// TestTLSClientCertificate: an upstream that requires a client
// certificate signed by its CA (s_server -Verify) serves a proxy that
// has one, and not one that has none.
func TestTLSClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "sluice test CA")
	clientCA := testcert.NewCA(t, "client CA")
	caFile := writeFile(t, dir, "ca.pem", ca.PEM)
	clientCAFile := writeFile(t, dir, "client-ca.pem", clientCA.PEM)
	cert, key := ca.Issue(t, testcert.Options{Names: []string{"backend.test"}}).Write(t, dir, "backend")
	ccert, ckey := clientCA.Issue(t, testcert.Options{CN: "sluice.client", Client: true}).Write(t, dir, "client")
	s := startSServer(t, cert, key, "-Verify", "1", "-CAfile", clientCAFile)
	up := "tcp://" + s.addr

	h := newHarness(t)
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(up)+
		tlsYAML("server_name: backend.test", "ca: "+caFile, "cert: "+ccert, "key: "+ckey)))
	if got := roundTrip(t, "tcp", h.Addr("front"), "mtls\n"); got != "sltm\n" {
		t.Fatalf("with a client certificate: got %q, want sltm\ns_server:\n%s", got, s.output())
	}
	// s_server's lines come through a pipe and a goroutine that may not
	// have run yet on a busy machine: wait for them.
	sawClient := func() bool {
		out := s.output()
		return strings.Contains(out, "CN=sluice.client") || strings.Contains(out, "CN = sluice.client")
	}
	for deadline := time.Now().Add(5 * time.Second); !sawClient() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !sawClient() {
		t.Errorf("s_server did not see the client certificate:\n%s", s.output())
	}

	// Without one, s_server refuses: in TLS 1.3 the refusal comes after
	// the proxy's side of the handshake, so the client just gets nothing.
	h.Apply(frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(up)+
		tlsYAML("server_name: backend.test", "ca: "+caFile)))
	refused(t, h.Addr("front"))
}

// TestTLSInsecureSkipVerify: with insecure_skip_verify a self-signed
// upstream is reached without a CA, and every load warns.
func TestTLSInsecureSkipVerify(t *testing.T) {
	dir := t.TempDir()
	cert, key := testcert.NewCA(t, "self").Issue(t, testcert.Options{Names: []string{"whatever.test"}}).Write(t, dir, "self")
	s := startSServer(t, cert, key)
	up := "tcp://" + s.addr
	h := newHarness(t)
	cfg := frontYAML("tcp", "127.0.0.1:0", "0", proxyYAML(up)+tlsYAML("insecure_skip_verify: true"))
	h.Apply(cfg)
	if got := roundTrip(t, "tcp", h.Addr("front"), "abc\n"); got != "cba\n" {
		t.Fatalf("got %q, want cba", got)
	}
	// A reload that builds the chain again says it again.
	h.Apply(cfg + "        connect_timeout: 3s\n")
	const warn = "[WARN]  sluice.supervisor.listener.proxy: tls.insecure_skip_verify is set"
	if n := strings.Count(h.Log(), warn); n != 2 {
		t.Fatalf("%d warnings about insecure_skip_verify after two loads, want 2:\n%s", n, h.Log())
	}
	if !strings.Contains(h.Log(), "listener=front") {
		t.Errorf("the warning does not name the listener:\n%s", h.Log())
	}
}
