package route_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// readmeExample returns the README's example i with its addresses
// replaced by the test's (old, new pairs).
func readmeExample(t *testing.T, i int, pairs ...string) string {
	t.Helper()
	ex := plugintest.ReadmeExamples(t, "README.md")
	if len(ex) <= i {
		t.Fatalf("README.md has %d examples", len(ex))
	}
	return strings.NewReplacer(pairs...).Replace(ex[i])
}

func TestReadmeSNIFanOut(t *testing.T) {
	app, org, h2 := tlsUpstream(t, "app.example.com"), tlsUpstream(t, "www.example.org"), tlsUpstream(t, "h2.example.com", "h2")
	s := newSluice(t, readmeExample(t, 0, "127.0.0.1:8443", "127.0.0.1:0",
		"127.0.0.1:9443", app, "127.0.0.1:9444", org, "127.0.0.1:9445", h2))
	addr := s.Addr("tls-front")
	for _, tc := range []struct {
		sni, alpn, want string
	}{
		{"app.example.com", "", "app.example.com"},
		{"app.example.com", "h2", "h2.example.com"},
		{"shop.example.org", "http/1.1", "www.example.org"},
	} {
		var protos []string
		if tc.alpn != "" {
			protos = []string{tc.alpn}
		}
		if _, got := tlsDial(t, addr, tc.sni, protos...); got != tc.want {
			t.Errorf("sni %s alpn %q: %s, want %s", tc.sni, tc.alpn, got, tc.want)
		}
	}
	// Any other name is closed: no default.
	raw, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(wait))
	tc := tlsClient(raw, "other.example.net")
	if err := tc.Handshake(); err == nil {
		t.Error("a handshake for an unrouted name completed")
	}
}

func TestReadmeSSHAndHTTPS(t *testing.T) {
	ssh, web := tagUpstream(t, "ssh"), tlsUpstream(t, "web.example.com")
	s := newSluice(t, readmeExample(t, 1, "127.0.0.1:8444", "127.0.0.1:0", "127.0.0.1:9422", ssh, "127.0.0.1:9443", web))
	addr := s.Addr("ssh-and-https")
	if got := roundTrip(t, "", addr, "SSH-2.0-x\r\n"); got != "ssh SSH-2.0-x" {
		t.Errorf("ssh: %q", got)
	}
	if _, got := tlsDial(t, addr, "web.example.com"); got != "web.example.com" {
		t.Errorf("https: %q", got)
	}
}

func TestReadmeHTTPHostAndCatchAll(t *testing.T) {
	api, smtp := httpUpstream(t, "api"), greeter(t, "220 ready")
	s := newSluice(t, readmeExample(t, 2, "127.0.0.1:8080", "127.0.0.1:0", "127.0.0.1:9080", api, "127.0.0.1:9081", smtp))
	addr := s.Addr("http-front")
	resp, err := (&http.Client{Timeout: wait, Transport: &http.Transport{DisableKeepAlives: true}}).Do(&http.Request{Method: "GET", URL: mustURL(t, "http://"+addr+"/"), Host: "api.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "api api.example.com\n" {
		t.Errorf("api: %q", body)
	}
	// A server-first client gets the catch-all after the 1s timeout.
	if got := roundTrip(t, "", addr, ""); got != "220 ready" {
		t.Errorf("server-first: %q", got)
	}
	if got := s.Metric("sluice_route_decisions_total", "listener", "http-front", "route", "timeout"); got != 1 {
		t.Errorf("decisions{route=timeout} = %v, want 1", got)
	}
}
