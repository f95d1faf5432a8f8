package admin_test

import (
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/admintest"
)

func TestRoutes(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	base := f.url(t)
	tests := []struct {
		method, path string
		code         int
		allow        string // the Allow header a 405 must carry
		body         string // exact body, when set
	}{
		{"GET", "/healthz", 200, "", "ok"},
		{"HEAD", "/healthz", 200, "", ""},
		{"POST", "/healthz", 405, "GET, HEAD", ""},
		{"GET", "/status", 200, "", ""},
		{"DELETE", "/status", 405, "GET, HEAD", ""},
		{"GET", "/metrics", 200, "", ""},
		{"PUT", "/metrics", 405, "GET, HEAD", ""},
		{"GET", "/reload", 405, "POST", ""},
		{"GET", "/", 200, "", ""},
		{"GET", "/nope", 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			r := admintest.Do(t, tt.method, base+tt.path)
			if r.Code != tt.code {
				t.Fatalf("code %d, want %d (body %q)", r.Code, tt.code, r.Body)
			}
			if tt.allow != "" && r.Header.Get("Allow") != tt.allow {
				t.Errorf("Allow %q, want %q", r.Header.Get("Allow"), tt.allow)
			}
			if tt.body != "" && r.Body != tt.body {
				t.Errorf("body %q, want %q", r.Body, tt.body)
			}
		})
	}
}

func TestHealthzDraining(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0"))
	f.admin.SetDraining()
	r := admintest.Do(t, "GET", f.url(t)+"/healthz")
	if r.Code != http.StatusServiceUnavailable || r.Body != "draining" {
		t.Fatalf("draining /healthz: %d %q, want 503 \"draining\"", r.Code, r.Body)
	}
	if !admintest.Status(t, f.url(t)).Draining {
		t.Error("/status does not say draining")
	}
}

// A browser page must not be able to trigger a reload; curl can.
func TestReloadRefusesCrossOriginBrowsers(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0"))
	req, _ := http.NewRequest("POST", f.url(t)+"/reload", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := admintest.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin POST /reload: %d, want 403", resp.StatusCode)
	}
	if _, ok := f.rl.Last(); ok {
		t.Error("a refused request ran a reload")
	}
}

func TestStatus(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "e.sock")
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0",
		admintest.Listener("b-unix", "unix", sock),
		admintest.Listener("a-tcp", "tcp", "127.0.0.1:0")))
	cfg := f.sup.Config()
	base := f.url(t)

	st := admintest.Status(t, base)
	if st.Config.SHA256 != cfg.Hash || len(st.Config.SHA256) != 64 {
		t.Errorf("sha256 %q, want %q", st.Config.SHA256, cfg.Hash)
	}
	if !st.Config.LoadedAt.Equal(cfg.LoadedAt) {
		t.Errorf("loaded_at %v, want %v", st.Config.LoadedAt, cfg.LoadedAt)
	}
	if st.Config.Path != f.path {
		t.Errorf("path %q, want %q", st.Config.Path, f.path)
	}
	if st.LastReload != nil {
		t.Errorf("last_reload %+v before any reload, want null", st.LastReload)
	}
	if st.Version == "" || st.GoVersion == "" || st.StartedAt.IsZero() || st.UptimeSeconds < 0 {
		t.Errorf("version/uptime fields missing: %+v", st)
	}
	if len(st.Listeners) != 2 {
		t.Fatalf("listeners %+v, want 2", st.Listeners)
	}
	// Sorted by name, with the bound address (the port picked for :0).
	a, b := st.Listeners[0], st.Listeners[1]
	if a.Name != "a-tcp" || a.Network != "tcp" || b.Name != "b-unix" || b.Network != "unix" || b.Address != sock {
		t.Errorf("listeners %+v", st.Listeners)
	}
	tcpAddr, _ := f.sup.Addr("a-tcp")
	if a.Address != tcpAddr || strings.HasSuffix(a.Address, ":0") {
		t.Errorf("a-tcp address %q, want the bound %q", a.Address, tcpAddr)
	}

	// Two open connections on one listener, one on the other.
	var conns []net.Conn
	for _, d := range []struct{ network, addr string }{{"tcp", tcpAddr}, {"tcp", tcpAddr}, {"unix", sock}} {
		c, err := net.Dial(d.network, d.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		// An echoed byte proves the connection is being served.
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
	}
	st = admintest.Status(t, base)
	if st.Listeners[0].Connections != 2 || st.Listeners[1].Connections != 1 {
		t.Errorf("open connections %+v, want a-tcp 2, b-unix 1", st.Listeners)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	admintest.WaitFor(t, "connections back to 0 in /status", func() bool {
		st := admintest.Status(t, base)
		return st.Listeners[0].Connections == 0 && st.Listeners[1].Connections == 0
	})
}

func TestReloadBadConfigKeepsServing(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	base := f.url(t)
	before := admintest.Status(t, base)
	addr, _ := admintest.ListenerAddr(before, "e")

	f.write(t, strings.Replace(admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")), "handler: echo", "handler: ech0", 1))
	code, resp := admintest.PostReload(t, base)
	if code != http.StatusUnprocessableEntity || resp.Result != "failure" {
		t.Fatalf("bad config: %d %+v, want 422 failure", code, resp)
	}
	want := `listeners[0].chain[0].handler: unknown handler "ech0"`
	if len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0], want) || !strings.Contains(resp.Errors[0], f.path) {
		t.Errorf("errors %q, want one naming %s and %q", resp.Errors, f.path, want)
	}

	// The old config still runs and serves.
	admintest.EchoRoundTrip(t, "tcp", addr, admintest.Payload(100))
	after := admintest.Status(t, base)
	if after.Config.SHA256 != before.Config.SHA256 {
		t.Error("the running config changed after a failed reload")
	}
	if after.LastReload == nil || after.LastReload.Result != "failure" || after.LastReload.Trigger != "admin" || !strings.Contains(after.LastReload.Error, want) {
		t.Errorf("last_reload %+v, want an admin failure naming the key", after.LastReload)
	}
	m := admintest.ScrapeMetrics(t, base)
	if got := m.Must(t, "sluice_config_reloads_total", "result", "failure"); got != 1 {
		t.Errorf("reloads failure %v, want 1", got)
	}
	if got := m.Must(t, "sluice_config_reloads_total", "result", "success"); got != 0 {
		t.Errorf("reloads success %v, want 0", got)
	}
}

func TestReloadGoodConfigApplies(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0",
		admintest.Listener("keep", "tcp", "127.0.0.1:0"),
		admintest.Listener("gone", "tcp", "127.0.0.3:0")))
	base := f.url(t)
	start := admintest.ScrapeMetrics(t, base).Must(t, "sluice_config_last_reload_success_timestamp_seconds")
	if loaded := float64(f.sup.Config().LoadedAt.UnixNano()) / 1e9; start != loaded {
		t.Errorf("last reload timestamp %v at start, want the load time %v", start, loaded)
	}

	sock := filepath.Join(t.TempDir(), "new.sock")
	f.write(t, admintest.ConfigYAML("127.0.0.1:0",
		admintest.Listener("keep", "tcp", "127.0.0.1:0"),
		admintest.Listener("new", "unix", sock)))
	before := time.Now()
	code, resp := admintest.PostReload(t, base)
	after := time.Now()
	if code != http.StatusOK || resp.Result != "success" || resp.Unchanged {
		t.Fatalf("good config: %d %+v", code, resp)
	}
	if !slices.Equal(resp.Added, []string{"new"}) || !slices.Equal(resp.Removed, []string{"gone"}) || len(resp.Changed) != 0 {
		t.Errorf("summary added %q removed %q changed %q, want [new] [gone] []", resp.Added, resp.Removed, resp.Changed)
	}
	if resp.SHA256 != f.sup.Config().Hash {
		t.Errorf("sha256 %q, want the running %q", resp.SHA256, f.sup.Config().Hash)
	}
	admintest.EchoRoundTrip(t, "unix", sock, admintest.Payload(10))

	m := admintest.ScrapeMetrics(t, base)
	if got := m.Must(t, "sluice_config_reloads_total", "result", "success"); got != 1 {
		t.Errorf("reloads success %v, want 1", got)
	}
	ts := m.Must(t, "sluice_config_last_reload_success_timestamp_seconds")
	if ts < float64(before.UnixNano())/1e9 || ts > float64(after.UnixNano())/1e9 {
		t.Errorf("last reload timestamp %v not within the POST [%v, %v]", ts, before.Unix(), after.Unix())
	}

	// The same file again: a success that changes nothing.
	code, resp = admintest.PostReload(t, base)
	if code != http.StatusOK || !resp.Unchanged {
		t.Errorf("unchanged reload: %d %+v", code, resp)
	}
}

// Reloads from many clients at once are serialized and each answered.
func TestConcurrentReloads(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	base := f.url(t)
	const n = 8
	var wg sync.WaitGroup
	codes := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			// Not postReload: t.Fatal must not be called off the test's goroutine.
			resp, err := admintest.Client().Post(base+"/reload", "", nil)
			if err != nil {
				errs[i] = err
				return
			}
			codes[i] = resp.StatusCode
			_ = resp.Body.Close()
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || codes[i] != http.StatusOK {
			t.Errorf("reload %d: %d %v", i, codes[i], errs[i])
		}
	}
	if got := admintest.ScrapeMetrics(t, base).Must(t, "sluice_config_reloads_total", "result", "success"); got != n {
		t.Errorf("reloads success %v, want %d", got, n)
	}
}
