package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admintest"
	"github.com/sluice-dev/sluice/pkg/admin"
)

// POST /reload during the shutdown drain answers 503 even when the file
// is unchanged, and that 503 is no failed reload.
func TestBinaryReloadWhileDraining(t *testing.T) {
	p, base, _, c := startDraining(t)
	// The file is unchanged: the one case that used to answer 200.
	code, resp := admintest.PostReload(t, base)
	if code != http.StatusServiceUnavailable || resp.Result != "failure" {
		t.Errorf("POST /reload while draining: %d %+v, want 503", code, resp)
	}
	m := admintest.ScrapeMetrics(t, base)
	if v := m.Must(t, "sluice_config_reloads_total", "result", "failure"); v != 0 {
		t.Errorf("reloads failure %v after a refused reload, want 0", v)
	}
	if v := m.Must(t, "sluice_config_reloads_total", "result", "success"); v != 0 {
		t.Errorf("reloads success %v after a refused reload, want 0", v)
	}
	if st := admintest.Status(t, base); st.LastReload != nil {
		t.Errorf("/status last_reload %+v after a refused reload, want none", st.LastReload)
	}
	_ = c.Close()
	if code := p.wait(waitBound); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// The endpoint's limits, through the real binary: request line and
// headers up to 16 KiB pass and more get 431; more connections than the
// cap wait in the kernel's queue while the data listeners serve on.
func TestBinaryAdminLimits(t *testing.T) {
	path := writeConfig(t, t.TempDir(), admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	p := startPlain(t, path)
	addr := p.waitLine(adminUp, 1)
	eAddr, _ := admintest.ListenerAddr(admintest.Status(t, "http://"+addr), "e")

	for _, tc := range []struct {
		size int
		want int
	}{
		{admin.HeaderLimit - 512, http.StatusOK},
		{admin.HeaderLimit + 512, http.StatusRequestHeaderFieldsTooLarge},
	} {
		if got := rawGet(t, addr, tc.size); got != tc.want {
			t.Errorf("GET /healthz with %d bytes of request head: %d, want %d", tc.size, got, tc.want)
		}
	}

	// Hold the cap's worth of idle connections, and more.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	for range admin.MaxConns + 16 {
		c, err := net.DialTimeout("tcp", addr, waitBound)
		if err != nil {
			t.Fatalf("dial admin: %v", err)
		}
		held = append(held, c)
	}
	// The data listener still serves...
	admintest.EchoRoundTrip(t, "tcp", eAddr, admintest.Payload(1000))
	// ...and a request past the cap waits for a slot rather than being
	// served at once: the server holds at most MaxConns connections.
	extra := held[len(held)-1]
	_ = extra.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := extra.Read(make([]byte, 1)); err == nil {
		t.Error("a connection past the cap was served at once")
	}
	// Freeing slots lets queued connections in.
	for _, c := range held[:admin.MaxConns] {
		_ = c.Close()
	}
	held = held[admin.MaxConns:]
	if r := admintest.Do(t, "GET", "http://"+addr+"/healthz"); r.Code != http.StatusOK {
		t.Errorf("/healthz after the flood: %d", r.Code)
	}
	p.terminate()
}

// rawGet sends GET /healthz whose request line and headers take size
// bytes in all, and returns the status code.
func rawGet(t *testing.T, addr string, size int) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitBound)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitBound))
	head := "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: "
	pad := size - len(head) - len("\r\n\r\n")
	req := head + strings.Repeat("a", pad) + "\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
