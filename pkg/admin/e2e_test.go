package admin_test

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
)

// The real binary, known traffic from Go clients, then exact numbers from
// /metrics; then a failed SIGHUP reload and a good POST /reload counted.
func TestBinaryScrapeAfterTraffic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	sock := filepath.Join(dir, "e.sock")
	cfg := configYAML("127.0.0.1:0", listenerSpec{"tcp-echo", "tcp", "127.0.0.1:0"}, listenerSpec{"unix-echo", "unix", sock})
	writeFile(t, path, cfg)
	start := time.Now()
	p := startSluice(t, path)
	base := "http://" + p.waitLog(adminUp, 1)

	st := status(t, base)
	tcpAddr, ok := listenerAddr(st, "tcp-echo")
	if !ok {
		t.Fatalf("no tcp-echo in /status: %+v", st.Listeners)
	}
	if len(st.Config.SHA256) != 64 || st.Config.LoadedAt.Before(start) || st.Config.Path != path {
		t.Errorf("/status config %+v", st.Config)
	}

	m := scrapeMetrics(t, base)
	if v := m.must(t, "sluice_connections_total", "listener", "tcp-echo"); v != 0 {
		t.Fatalf("connections_total %v before any traffic", v)
	}

	tcpBytes := traffic(t, "tcp", tcpAddr, 1, 100, 65536, 3<<20)
	unixBytes := traffic(t, "unix", sock, 0, 12345)
	checkTraffic(t, base, "tcp-echo", 4, tcpBytes)
	checkTraffic(t, base, "unix-echo", 2, unixBytes)

	// A bad file and SIGHUP: a counted failure; the old config serves.
	writeFile(t, path, strings.Replace(cfg, "handler: echo", "handler: nope", 1))
	p.signal(syscall.SIGHUP)
	waitFor(t, "a failed reload counted", func() bool {
		v, _ := scrapeMetrics(t, base).value("sluice_config_reloads_total", "result", "failure")
		return v == 1
	})
	echoRoundTrip(t, "tcp", tcpAddr, payload(10))

	// A good file through POST /reload: a counted success, timestamped.
	writeFile(t, path, configYAML("127.0.0.1:0", listenerSpec{"tcp-echo", "tcp", "127.0.0.1:0"}))
	before := time.Now()
	code, resp := postReload(t, base)
	if code != http.StatusOK || len(resp.Removed) != 1 || resp.Removed[0] != "unix-echo" {
		t.Fatalf("POST /reload: %d %+v, want unix-echo removed", code, resp)
	}
	m = scrapeMetrics(t, base)
	if v := m.must(t, "sluice_config_reloads_total", "result", "success"); v != 1 {
		t.Errorf("reloads success %v, want 1", v)
	}
	if v := m.must(t, "sluice_config_reloads_total", "result", "failure"); v != 1 {
		t.Errorf("reloads failure %v, want 1", v)
	}
	if ts := m.must(t, "sluice_config_last_reload_success_timestamp_seconds"); ts < float64(before.Unix()) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("last reload timestamp %v, want about %v", ts, before.Unix())
	}
	checkTraffic(t, base, "tcp-echo", 5, tcpBytes+10)

	p.stop()
	if !refused(strings.TrimPrefix(base, "http://")) {
		t.Error("admin endpoint still accepts after exit")
	}
}

// The real binary: POST /reload moves the endpoint (old address refuses,
// new one serves), then a reload onto an address in use fails as a whole.
func TestBinaryEndpointMoves(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	writeFile(t, path, configYAML("127.0.0.1:0", listenerSpec{"e", "tcp", "127.0.0.1:0"}))
	p := startSluice(t, path)
	oldAddr := p.waitLog(adminUp, 1)

	newAddr := freeAddr(t, "127.0.0.2")
	writeFile(t, path, configYAML(newAddr, listenerSpec{"e", "tcp", "127.0.0.1:0"}))
	if code, resp := postReload(t, "http://"+oldAddr); code != http.StatusOK {
		t.Fatalf("move: %d %+v", code, resp)
	}
	if got := p.waitLog(adminUp, 2); got != newAddr {
		t.Fatalf("endpoint up at %s, want %s", got, newAddr)
	}
	if !refused(oldAddr) {
		t.Errorf("old address %s still accepts", oldAddr)
	}
	base := "http://" + newAddr
	if r := do(t, "GET", base+"/healthz"); r.code != 200 || r.body != "ok" {
		t.Fatalf("new address /healthz: %d %q", r.code, r.body)
	}
	before := status(t, base)
	eAddr, _ := listenerAddr(before, "e")

	taken := occupy(t)
	writeFile(t, path, configYAML(taken, listenerSpec{"e", "tcp", "127.0.0.1:0"}, listenerSpec{"more", "tcp", "127.0.0.3:0"}))
	code, resp := postReload(t, base)
	if code != http.StatusInternalServerError || len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0], "admin.address") {
		t.Fatalf("reload onto a taken admin address: %d %+v, want 500 naming admin.address", code, resp)
	}
	after := status(t, base)
	if len(after.Listeners) != 1 || !reflect.DeepEqual(after.Listeners[0], before.Listeners[0]) || after.Config.SHA256 != before.Config.SHA256 {
		t.Errorf("listeners changed by a failed reload: %+v -> %+v", before.Listeners, after.Listeners)
	}
	echoRoundTrip(t, "tcp", eAddr, payload(1000))
	p.stop()
}

func TestBinaryStartFailsOnAdminAddressInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, configYAML(occupy(t), listenerSpec{"e", "tcp", "127.0.0.1:0"}))
	p := startSluice(t, path)
	if code := p.wait(); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if log := p.log(); !strings.Contains(log, "admin.address") || !strings.Contains(log, "address already in use") {
		t.Errorf("log does not name admin.address and the cause:\n%s", log)
	}
}

// While connections drain after SIGTERM the endpoint stays up: /healthz
// says draining and /metrics shows the connection until it closes.
func TestBinaryEndpointUpWhileDraining(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, strings.Replace(configYAML("127.0.0.1:0", listenerSpec{"e", "tcp", "127.0.0.1:0"}), "drain_timeout: 5s", "drain_timeout: 1m", 1))
	p := startSluice(t, path)
	base := "http://" + p.waitLog(adminUp, 1)
	eAddr, _ := listenerAddr(status(t, base), "e")
	c, err := net.Dial("tcp", eAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}

	p.signal(syscall.SIGTERM)
	waitFor(t, "/healthz to say draining", func() bool {
		return do(t, "GET", base+"/healthz").code == http.StatusServiceUnavailable
	})
	if !refused(eAddr) {
		t.Error("listener still accepts while draining")
	}
	m := scrapeMetrics(t, base)
	if v := m.must(t, "sluice_connections_active", "listener", "e"); v != 1 {
		t.Errorf("connections_active %v while draining, want 1", v)
	}
	if v := m.must(t, "sluice_bytes_total", "listener", "e", "direction", "in"); v != 2 {
		t.Errorf("bytes in %v while draining, want 2", v)
	}
	_ = c.Close()
	if code := p.wait(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if !refused(strings.TrimPrefix(base, "http://")) {
		t.Error("admin endpoint still accepts after exit")
	}
}
