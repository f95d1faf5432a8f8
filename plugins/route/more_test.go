package route_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/testnet"
	"github.com/sluice-dev/sluice/internal/testtool"
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/peek"
	"github.com/sluice-dev/sluice/pkg/registry"
)

func httpUpstream(t *testing.T, tag string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s\n", tag, r.Host)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func hostConfig(api, web string) string {
	return routeConfig(withLog, `
        routes:
          - name: api
            match: {http_host: [api.example.com]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
          - match: {protocol: http}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, api, web)
}

func TestHTTPHostWithCurl(t *testing.T) {
	curl := testtool.Need(t, "curl", "curl")
	s := newSluice(t, hostConfig(httpUpstream(t, "api"), httpUpstream(t, "web")))
	url := "http://" + s.Addr("front") + "/"
	for host, want := range map[string]string{
		"api.example.com:8080": "api api.example.com:8080",
		"API.example.com":      "api API.example.com",
		"www.example.com":      "web www.example.com",
	} {
		out, err := exec.Command(curl, "-sS", "--max-time", "10", "-H", "Host: "+host, url).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("curl -H 'Host: %s': %q, %v; want %q", host, out, err, want)
		}
	}
	s.WaitIdle("front")
	if !strings.Contains(s.Log(), `"http_host":"api.example.com"`) {
		t.Errorf("no access log line names the http_host:\n%s", s.Log())
	}
}

func TestHTTPHostGoClientHeaderSplit(t *testing.T) {
	s := newSluice(t, hostConfig(httpUpstream(t, "api"), httpUpstream(t, "web")))
	raw, err := net.DialTimeout("tcp", s.Addr("front"), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := &dribble{Conn: raw, n: 5}
	req := "GET / HTTP/1.1\r\nUser-Agent: t\r\nHost: api.example.com\r\nConnection: close\r\n\r\n"
	_ = raw.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(raw)
	if !strings.Contains(string(body), "api api.example.com") {
		t.Errorf("answer %q, want the api upstream's", body)
	}
}

// Every byte is replayed: a bulk transfer through an SNI route comes back
// byte-exact, both ways, on the bare socket (splice) and through a
// payload-logging wrapper (replay).
func TestBulkThroughSNIRouteIsByteExact(t *testing.T) {
	up := tlsUpstream(t, "a.example.com")
	for _, payload := range []bool{false, true} {
		t.Run(fmt.Sprintf("payload=%v", payload), func(t *testing.T) {
			s := newSluice(t, routeConfig(withLogPayload, `
        routes:
          - match: {sni: [a.example.com]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, payload, up))
			c, got := tlsDial(t, s.Addr("front"), "a.example.com")
			if got != "a.example.com" {
				t.Fatalf("handshake with %q", got)
			}
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			data := make([]byte, 8<<20)
			_, _ = rand.Read(data)
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = c.Write(data)
			}()
			back := make([]byte, len(data))
			_, err := io.ReadFull(c, back)
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(back) != sha256.Sum256(data) {
				t.Fatal("the bytes that came back differ from those sent")
			}
			_ = c.Close()
			s.WaitIdle("front")
		})
	}
}

func TestOpenSSLClient(t *testing.T) {
	openssl := testtool.Need(t, "openssl", "openssl")
	a, b := tlsUpstream(t, "a.example.com"), tlsUpstream(t, "b.example.org")
	s := newSluice(t, sniConfig(a, b, a))
	for sni, want := range map[string]string{"a.example.com": "CN=a.example.com", "www.example.org": "CN=b.example.org"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", s.Addr("front"), "-servername", sni, "-brief")
		cmd.Stdin = strings.NewReader("ping\n")
		out, err := cmd.CombinedOutput()
		cancel()
		// openssl writes "CN = name" or "CN=name" by version.
		norm := bytes.ReplaceAll(out, []byte(" = "), []byte("="))
		if !bytes.Contains(norm, []byte("Peer certificate: "+want)) || !bytes.Contains(out, []byte("CONNECTION ESTABLISHED")) {
			t.Errorf("openssl s_client -servername %s: want a handshake with %s:\n%s (%v)", sni, want, out, err)
		}
	}
}

func TestSSHClient(t *testing.T) {
	ssh := testtool.Need(t, "ssh", "openssh-client")
	banners := make(chan string, 1)
	up := testnet.Serve(t, listen(t), func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(wait))
		_, _ = io.WriteString(c, "SSH-2.0-sluicetest\r\n")
		b := make([]byte, 255)
		n, _ := c.Read(b)
		select {
		case banners <- string(b[:n]):
		default:
		}
	})
	web := tlsUpstream(t, "a.example.com")
	s := newSluice(t, routeConfig("", `
        routes:
          - match: {protocol: ssh}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
        default: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, up, web))
	host, port, _ := net.SplitHostPort(s.Addr("front"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = exec.CommandContext(ctx, ssh, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-p", port, "test@"+host, "true").Run()
	select {
	case b := <-banners:
		if !strings.HasPrefix(b, "SSH-2.0-OpenSSH") {
			t.Errorf("the ssh upstream got %q, want an OpenSSH banner", b)
		}
	case <-time.After(wait):
		t.Fatal("the ssh client never reached the ssh upstream")
	}
	if _, got := tlsDial(t, s.Addr("front"), "x"); got != "a.example.com" {
		t.Errorf("tls went to %q", got)
	}
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// termTLS is a stand-in for a tls middleware: it terminates TLS with its
// certificate and hands the rest of the chain the *tls.Conn.
type termTLS struct{}

var termCert struct {
	once sync.Once
	cert tls.Certificate
}

func (*termTLS) WrapStream(next chain.StreamHandler) chain.StreamHandler {
	return chain.StreamHandlerFunc(func(ctx context.Context, c *chain.Conn) error {
		tc := tls.Server(c.Conn, &tls.Config{Certificates: []tls.Certificate{termCert.cert}, NextProtos: []string{"h2", "x-sluice"}})
		_ = tc.SetDeadline(time.Now().Add(wait))
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		_ = tc.SetDeadline(time.Time{})
		c.Conn = tc
		return next.ServeStream(ctx, c)
	})
}

func registerTermTLS(t *testing.T) {
	termCert.once.Do(func() {
		termCert.cert = certFor(t, "sluice.test")
		registry.Register("test_tls", func() any { return new(termTLS) })
	})
}

// After a terminating middleware, sni and alpn match the negotiated
// values, with no peek; http_host reads the decrypted bytes.
func TestAfterTLSTermination(t *testing.T) {
	registerTermTLS(t)
	s := newSluice(t, routeConfig("      - handler: test_tls\n", `
        routes:
          - match: {sni: [a.example.com], alpn: [x-sluice]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
          - match: {protocol: tls, http_host: [api.example.com]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, tagUpstream(t, "a"), httpUpstream(t, "api")))
	c, _ := tlsDial(t, s.Addr("front"), "a.example.com", "x-sluice")
	_, _ = io.WriteString(c, "hi\n")
	line, _ := io.ReadAll(c)
	if string(line) != "a hi\n" {
		t.Errorf("sni+alpn route: %q", line)
	}
	c, _ = tlsDial(t, s.Addr("front"), "other")
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n")
	body, _ := io.ReadAll(c)
	if !strings.Contains(string(body), "api api.example.com") {
		t.Errorf("http_host after tls: %q", body)
	}
}

// A reload that changes one route's chain: new connections take the new
// chain, an open one finishes on its own.
func TestReloadChangesARoute(t *testing.T) {
	one, two := tagUpstream(t, "one"), tagUpstream(t, "two")
	cfg := func(up string) string {
		return routeConfig("", `
        routes:
          - match: {protocol: ssh}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, up)
	}
	s := newSluice(t, cfg(one))
	addr := s.Addr("front")
	open, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	_ = open.SetDeadline(time.Now().Add(wait))
	_, _ = io.WriteString(open, "SSH-")
	s.WaitOpen("front", 1)
	if sum := s.Apply(cfg(two)); len(sum.Changed) != 1 {
		t.Fatalf("reload summary %+v: want front changed", sum)
	}
	if got := roundTrip(t, "", s.Addr("front"), "SSH-new\n"); got != "two SSH-new" {
		t.Errorf("after the reload: %q", got)
	}
	_, _ = io.WriteString(open, "old\n")
	b, _ := io.ReadAll(open)
	if string(b) != "one SSH-old\n" {
		t.Errorf("the open connection: %q, want it finished on its chain", b)
	}
}

// Middlewares work in a route's chain, and /status shows the upstreams
// behind a route.
func TestNestedRatelimitAndStatus(t *testing.T) {
	up := tagUpstream(t, "up")
	s := newSluice(t, routeConfig("", `
        routes:
          - name: limited
            match: {protocol: ssh}
            chain:
              - handler: ratelimit
                connections_per_second: 0.001
                burst: 1
              - handler: proxy
                upstreams: ["tcp://%s"]
`, up))
	addr := s.Addr("front")
	if got := roundTrip(t, "", addr, "SSH-1\n"); got != "up SSH-1" {
		t.Fatalf("first: %q", got)
	}
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(wait))
	_, _ = io.WriteString(c, "SSH-2\n")
	if b, _ := io.ReadAll(c); len(b) != 0 {
		t.Errorf("second connection over the rate got %q, want it closed", b)
	}
	_ = c.Close()
	if got := s.Metric("sluice_ratelimit_rejected_total", "listener", "front", "reason", "rate"); got != 1 {
		t.Errorf("ratelimit rejected = %v, want 1", got)
	}
	st, _ := json.Marshal(s.Supervisor.Status())
	if !strings.Contains(string(st), `"route":"limited"`) || !strings.Contains(string(st), up) {
		t.Errorf("/status does not show the upstream behind the route: %s", st)
	}
}

// replaySeen is what the replay probe saw of the connection it was
// handed: the bytes replayed to it, and whether the Replay sits straight
// on the accepted socket.
type replaySeen struct {
	pending string
	onRaw   bool
	notes   int // annotations made before it ran
}

var replayProbe struct {
	once sync.Once
	seen chan replaySeen
}

type replayProbeHandler struct{}

func (*replayProbeHandler) ServeStream(_ context.Context, c *chain.Conn) error {
	got := replaySeen{notes: len(c.Annotations()) / 2}
	if r, ok := c.Conn.(*peek.Replay); ok {
		got.pending, got.onRaw = string(r.Pending()), r.Unwrap() == c.Raw()
	}
	replayProbe.seen <- got
	return nil
}

func registerReplayProbe() {
	replayProbe.once.Do(func() {
		replayProbe.seen = make(chan replaySeen, 4)
		registry.Register("test_replay_probe", func() any { return new(replayProbeHandler) })
	})
}

// The route annotates the access log line (route, sni, alpn, http_host)
// when a log reads it: one before the route, or one in the chosen chain.
// With neither it makes no annotation, which would cost allocations on
// every connection for nothing.
func TestAnnotationsOnlyForALog(t *testing.T) {
	registerReplayProbe()
	up := tlsUpstream(t, "a.example.com")
	s := newSluice(t, routeConfig("", `
        routes:
          - match: {sni: [a.example.com]}
            chain: [{handler: log}, {handler: proxy, upstreams: ["tcp://%s"]}]
          - match: {protocol: ssh}
            chain: [{handler: test_replay_probe}]
`, up))
	c, got := tlsDial(t, s.Addr("front"), "a.example.com")
	if got != "a.example.com" {
		t.Fatalf("handshake with %q", got)
	}
	testnet.MustEcho(t, c, "hello")
	_ = c.Close()
	s.WaitIdle("front")
	var lines []map[string]any
	for _, r := range s.Records("connection closed") {
		if r["@module"] == "sluice.supervisor.listener.log" {
			lines = append(lines, r)
		}
	}
	if len(lines) != 1 || lines[0]["route"] != "0" || lines[0]["sni"] != "a.example.com" {
		t.Errorf("the log in the chosen chain wrote %v; want one line with route 0 and sni a.example.com", lines)
	}
	raw, err := net.DialTimeout("tcp", s.Addr("front"), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = io.WriteString(raw, "SSH-2.0-x\r\n")
	select {
	case got := <-replayProbe.seen:
		if got.notes != 0 {
			t.Errorf("with no log anywhere the route made %d annotations, want none", got.notes)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the replay probe never ran")
	}
}

// After a decision the chosen chain gets the bytes read to decide, in a
// peek.Replay: straight on the accepted socket, which the relay then
// works on itself once it sent them (plugins/proxy's TestCopyPaths, the
// replayed case, still splices), or on the wrapper of a middleware before
// the route.
func TestChosenChainGetsTheBytesReplayed(t *testing.T) {
	registerReplayProbe()
	const banner = "SSH-2.0-x\r\n"
	for _, payload := range []bool{false, true} {
		s := newSluice(t, routeConfig(withLogPayload, `
        routes:
          - match: {protocol: ssh}
            chain: [{handler: %s}]
`, payload, "test_replay_probe"))
		c, err := net.DialTimeout("tcp", s.Addr("front"), wait)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, banner)
		select {
		case got := <-replayProbe.seen:
			if want := (replaySeen{banner, !payload, 1}); got != want {
				t.Errorf("payload %v: the chosen chain got %+v, want %+v", payload, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the replay probe never ran")
		}
		_ = c.Close()
		s.WaitIdle("front")
	}
}

// The bytes read to decide reach the upstream exactly, whether they fit
// the pooled first buffer (given back once sent) or the look outgrew it:
// an HTTP request whose Host comes after 1 KiB or 20 KiB of headers,
// echoed back byte for byte, twice each (the second look reuses a buffer
// the first gave back).
func TestFirstBytesReplayedExactlyAnySize(t *testing.T) {
	up := testnet.Serve(t, testnet.Listen(t, "tcp"), func(c net.Conn) { _, _ = io.Copy(c, c) })
	s := newSluice(t, routeConfig("", `
        max_bytes: 64KiB
        routes:
          - match: {http_host: [api.example.com]}
            chain: [{handler: proxy, upstreams: ["tcp://%s"]}]
`, up))
	for _, pad := range []int{1 << 10, 20 << 10, 1 << 10, 20 << 10} {
		req := "GET / HTTP/1.1\r\nX-Pad: " + strings.Repeat(fmt.Sprint(pad%7), pad) + "\r\nHost: api.example.com\r\n\r\nbody"
		c, err := net.DialTimeout("tcp", s.Addr("front"), wait)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(req))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != req {
			t.Fatalf("%d bytes of headers: echoed %d bytes (%v), equal %v", pad, len(got), err, string(got) == req)
		}
		_ = c.Close()
	}
	wantDecisions(t, s, "0", 4)
}
