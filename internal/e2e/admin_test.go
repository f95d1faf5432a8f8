package e2e

import (
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admintest"
)

// The real binary, known traffic from Go clients, then exact numbers from
// /metrics; then a failed SIGHUP reload and a good POST /reload counted.
func TestBinaryScrapeAfterTraffic(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "e.sock")
	cfg := admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("tcp-echo", "tcp", "127.0.0.1:0"), admintest.Listener("unix-echo", "unix", sock))
	path := writeConfig(t, dir, cfg)
	start := time.Now()
	p := startPlain(t, path)
	base := "http://" + p.waitLine(adminUp, 1)

	st := admintest.Status(t, base)
	tcpAddr, ok := admintest.ListenerAddr(st, "tcp-echo")
	if !ok {
		t.Fatalf("no tcp-echo in /status: %+v", st.Listeners)
	}
	if len(st.Config.SHA256) != 64 || st.Config.LoadedAt.Before(start) || st.Config.Path != path {
		t.Errorf("/status config %+v", st.Config)
	}

	m := admintest.ScrapeMetrics(t, base)
	if v := m.Must(t, "sluice_connections_total", "listener", "tcp-echo"); v != 0 {
		t.Fatalf("connections_total %v before any traffic", v)
	}

	tcpBytes := admintest.Traffic(t, "tcp", tcpAddr, 1, 100, 65536, 3<<20)
	unixBytes := admintest.Traffic(t, "unix", sock, 0, 12345)
	admintest.CheckTraffic(t, base, "tcp-echo", 4, tcpBytes)
	admintest.CheckTraffic(t, base, "unix-echo", 2, unixBytes)

	// A bad file and SIGHUP: a counted failure; the old config serves.
	writeConfig(t, dir, strings.Replace(cfg, "handler: echo", "handler: nope", 1))
	p.signal(syscall.SIGHUP)
	admintest.WaitFor(t, "a failed reload counted", func() bool {
		v, _ := admintest.ScrapeMetrics(t, base).Value("sluice_config_reloads_total", "result", "failure")
		return v == 1
	})
	admintest.EchoRoundTrip(t, "tcp", tcpAddr, admintest.Payload(10))

	// A good file through POST /reload: a counted success, timestamped.
	writeConfig(t, dir, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("tcp-echo", "tcp", "127.0.0.1:0")))
	before := time.Now()
	code, resp := admintest.PostReload(t, base)
	if code != http.StatusOK || len(resp.Removed) != 1 || resp.Removed[0] != "unix-echo" {
		t.Fatalf("POST /reload: %d %+v, want unix-echo removed", code, resp)
	}
	m = admintest.ScrapeMetrics(t, base)
	if v := m.Must(t, "sluice_config_reloads_total", "result", "success"); v != 1 {
		t.Errorf("reloads success %v, want 1", v)
	}
	if v := m.Must(t, "sluice_config_reloads_total", "result", "failure"); v != 1 {
		t.Errorf("reloads failure %v, want 1", v)
	}
	if ts := m.Must(t, "sluice_config_last_reload_success_timestamp_seconds"); ts < float64(before.Unix()) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("last reload timestamp %v, want about %v", ts, before.Unix())
	}
	admintest.CheckTraffic(t, base, "tcp-echo", 5, tcpBytes+10)

	p.terminate()
	if !refused(strings.TrimPrefix(base, "http://")) {
		t.Error("admin endpoint still accepts after exit")
	}
}

// The real binary: POST /reload moves the endpoint (old address refuses,
// new one serves), then a reload onto an address in use fails as a whole.
func TestBinaryEndpointMoves(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	p := startPlain(t, path)
	oldAddr := p.waitLine(adminUp, 1)

	newAddr := admintest.FreeAddr(t, "127.0.0.2")
	writeConfig(t, dir, admintest.ConfigYAML(newAddr, admintest.Listener("e", "tcp", "127.0.0.1:0")))
	if code, resp := admintest.PostReload(t, "http://"+oldAddr); code != http.StatusOK {
		t.Fatalf("move: %d %+v", code, resp)
	}
	if got := p.waitLine(adminUp, 2); got != newAddr {
		t.Fatalf("endpoint up at %s, want %s", got, newAddr)
	}
	if !refused(oldAddr) {
		t.Errorf("old address %s still accepts", oldAddr)
	}
	base := "http://" + newAddr
	if r := admintest.Do(t, "GET", base+"/healthz"); r.Code != 200 || r.Body != "ok" {
		t.Fatalf("new address /healthz: %d %q", r.Code, r.Body)
	}
	before := admintest.Status(t, base)
	eAddr, _ := admintest.ListenerAddr(before, "e")

	taken := admintest.Occupy(t)
	writeConfig(t, dir, admintest.ConfigYAML(taken, admintest.Listener("e", "tcp", "127.0.0.1:0"), admintest.Listener("more", "tcp", "127.0.0.3:0")))
	code, resp := admintest.PostReload(t, base)
	if code != http.StatusInternalServerError || len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0], "admin.address") {
		t.Fatalf("reload onto a taken admin address: %d %+v, want 500 naming admin.address", code, resp)
	}
	after := admintest.Status(t, base)
	if len(after.Listeners) != 1 || !reflect.DeepEqual(after.Listeners[0], before.Listeners[0]) || after.Config.SHA256 != before.Config.SHA256 {
		t.Errorf("listeners changed by a failed reload: %+v -> %+v", before.Listeners, after.Listeners)
	}
	admintest.EchoRoundTrip(t, "tcp", eAddr, admintest.Payload(1000))
	p.terminate()
}

func TestBinaryStartFailsOnAdminAddressInUse(t *testing.T) {
	path := writeConfig(t, t.TempDir(), admintest.ConfigYAML(admintest.Occupy(t), admintest.Listener("e", "tcp", "127.0.0.1:0")))
	p := startPlain(t, path)
	if code := p.wait(waitBound); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if log := p.output(); !strings.Contains(log, "admin.address") || !strings.Contains(log, "address already in use") {
		t.Errorf("log does not name admin.address and the cause:\n%s", log)
	}
}

// startDraining starts sluice with one echo listener "e" and a 1m drain,
// holds one connection open on it with 2 bytes each way, sends SIGTERM and
// waits for /healthz to say draining. The connection closes when the test
// ends; closing it earlier lets the drain finish.
func startDraining(t *testing.T) (p *proc, base, eAddr string, c net.Conn) {
	t.Helper()
	path := writeConfig(t, t.TempDir(), strings.Replace(admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")), "drain_timeout: 5s", "drain_timeout: 1m", 1))
	p = startPlain(t, path)
	base = "http://" + p.waitLine(adminUp, 1)
	eAddr, _ = admintest.ListenerAddr(admintest.Status(t, base), "e")
	c, err := net.Dial("tcp", eAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}

	p.signal(syscall.SIGTERM)
	admintest.WaitFor(t, "/healthz to say draining", func() bool {
		return admintest.Do(t, "GET", base+"/healthz").Code == http.StatusServiceUnavailable
	})
	return p, base, eAddr, c
}

// While connections drain after SIGTERM the endpoint stays up: /healthz
// says draining and /metrics shows the connection until it closes.
func TestBinaryEndpointUpWhileDraining(t *testing.T) {
	p, base, eAddr, c := startDraining(t)
	// /healthz turns to draining first, to warn load balancers, and the
	// listeners close right after: poll rather than dial once.
	admintest.WaitFor(t, "the listener to refuse connections while draining", func() bool { return refused(eAddr) })
	// The echo counts its bytes once its write has returned, which can
	// be after the client read them back (a loaded machine showed 0 in
	// one scrape): poll until a scrape shows them, the connection still
	// open and draining.
	var in float64
	admintest.WaitFor(t, "the 2 bytes in to show while draining", func() bool {
		in, _ = admintest.ScrapeMetrics(t, base).Value("sluice_bytes_total", "listener", "e", "direction", "in")
		return in >= 2
	})
	if in != 2 {
		t.Errorf("bytes in %v while draining, want 2", in)
	}
	m := admintest.ScrapeMetrics(t, base)
	if v := m.Must(t, "sluice_connections_active", "listener", "e"); v != 1 {
		t.Errorf("connections_active %v while draining, want 1", v)
	}
	_ = c.Close()
	if code := p.wait(waitBound); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if !refused(strings.TrimPrefix(base, "http://")) {
		t.Error("admin endpoint still accepts after exit")
	}
}
