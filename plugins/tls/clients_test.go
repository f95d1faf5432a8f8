package tlsterm_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/internal/testtool"
)

// clientFiles writes a CA bundle and two pairs (a.test ECDSA, b.test
// RSA) and returns the certificates option for them and the bundle.
func clientFiles(t *testing.T, ca *testcert.CA) (opts, caFile string) {
	t.Helper()
	dir := t.TempDir()
	aCert, aKey := ca.Issue(t, testcert.Options{Names: []string{"a.test"}, Format: testcert.ECDSASEC1}).Write(t, dir, "a")
	bCert, bKey := ca.Issue(t, testcert.Options{Names: []string{"b.test"}, Format: testcert.RSAPKCS1}).Write(t, dir, "b")
	caFile = filepath.Join(dir, "ca.pem")
	testcert.WriteFile(t, caFile, ca.PEM)
	return certOpts(aCert, aKey, bCert, bKey), caFile
}

// sClient runs openssl s_client against addr with args, sends line, waits
// for it to come back, then ends its input; it returns the summary
// s_client printed (-brief) and whether the echo came.
func sClient(t *testing.T, addr, line string, args ...string) (summary string, echoed bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testtool.Need(t, "openssl", "openssl"), append([]string{"s_client", "-brief", "-connect", addr}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(stdin, line+"\n")
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), line) {
		n, err := stdout.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	_ = stdin.Close()
	_, _ = io.Copy(io.Discard, stdout)
	_ = cmd.Wait()
	return stderr.String(), strings.Contains(out.String(), line)
}

// TestOpenSSLClient: openssl s_client verifies each name's certificate
// (picked by SNI, ECDSA and RSA), and its data comes back through echo;
// a TLS 1.1 s_client is refused.
func TestOpenSSLClient(t *testing.T) {
	ca := testcert.NewCA(t, "root")
	opts, caFile := clientFiles(t, ca)
	f := newFront(t, opts)
	for _, sni := range []string{"a.test", "b.test"} {
		summary, echoed := sClient(t, f.addr, "hello "+sni,
			"-servername", sni, "-verify_hostname", sni, "-CAfile", caFile, "-verify_return_error")
		if !echoed || !strings.Contains(summary, "Verification: OK") || !strings.Contains(summary, "CN = "+sni) {
			t.Errorf("%s: echoed %v; s_client said:\n%s", sni, echoed, summary)
		}
	}
	summary, echoed := sClient(t, f.addr, "old", "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", caFile)
	if echoed || !strings.Contains(summary, "protocol version") {
		t.Errorf("TLS 1.1: echoed %v, want an alert protocol version; s_client said:\n%s", echoed, summary)
	}
}

// TestCurl: curl --resolve reaches a plaintext HTTP backend through
// tls → proxy, verifying each name's certificate; under client_ca it
// needs its --cert.
func TestCurl(t *testing.T) {
	curl := testtool.Need(t, "curl", "curl")
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %s %s", r.Host, r.Proto)
	}))
	defer backend.Close()
	ca := testcert.NewCA(t, "root")
	opts, caFile := clientFiles(t, ca)
	clients := testcert.NewCA(t, "clients")
	dir := t.TempDir()
	clientsFile := filepath.Join(dir, "clients.pem")
	testcert.WriteFile(t, clientsFile, clients.PEM)
	clientCert, clientKey := clients.Issue(t, testcert.Options{CN: "curl", Client: true}).Write(t, dir, "client")

	proxy := "      - handler: proxy\n        upstreams: [tcp://" + backend.Listener.Addr().String() + "]\n"
	run := func(f *front, sni string, extra ...string) (string, error) {
		_, port, _ := net.SplitHostPort(f.addr)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		args := append([]string{"-sS", "--max-time", "15", "--resolve", sni + ":" + port + ":127.0.0.1", "--cacert", caFile},
			append(extra, "https://"+sni+":"+port+"/")...)
		out, err := exec.CommandContext(ctx, curl, args...).CombinedOutput()
		return string(out), err
	}

	f := newFront(t, opts+"        alpn: [http/1.1]\n", proxy)
	for _, sni := range []string{"a.test", "b.test"} {
		out, err := run(f, sni)
		if err != nil || !strings.Contains(out, "backend saw "+sni) {
			t.Errorf("curl %s: %v\n%s", sni, err, out)
		}
	}

	m := newFront(t, opts+"        client_ca: "+clientsFile+"\n", proxy)
	if out, err := run(m, "a.test"); err == nil {
		t.Errorf("curl without a client certificate was served:\n%s", out)
	}
	if out, err := run(m, "a.test", "--cert", clientCert, "--key", clientKey); err != nil || !strings.Contains(out, "backend saw a.test") {
		t.Errorf("curl with a client certificate: %v\n%s", err, out)
	}
}
