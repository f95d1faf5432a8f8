package admin_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/admintest"
)

// POST /reload served by the endpoint that the reload moves: the answer
// arrives, the old address refuses, the new one serves.
func TestReloadMovesEndpoint(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	oldAddr := f.admin.Addr()
	newAddr := admintest.FreeAddr(t, "127.0.0.2")

	f.write(t, admintest.ConfigYAML(newAddr, admintest.Listener("e", "tcp", "127.0.0.1:0")))
	code, resp := admintest.PostReload(t, "http://"+oldAddr)
	if code != http.StatusOK || resp.Result != "success" {
		t.Fatalf("move: %d %+v", code, resp)
	}
	// Nothing listener-wise changed: only the admin section did.
	if len(resp.Added)+len(resp.Removed)+len(resp.Changed) != 0 {
		t.Errorf("summary %+v, want no listener change", resp)
	}
	if got := f.admin.Addr(); got != newAddr {
		t.Fatalf("Addr %q after the move, want %q", got, newAddr)
	}
	// The old socket is closed before Commit returns, so no waiting.
	if !refused(oldAddr) {
		t.Errorf("old address %s still accepts after the move", oldAddr)
	}
	if r := admintest.Do(t, "GET", "http://"+newAddr+"/healthz"); r.Code != 200 || r.Body != "ok" {
		t.Errorf("new address /healthz: %d %q", r.Code, r.Body)
	}
	st := admintest.Status(t, "http://"+newAddr)
	if st.LastReload == nil || st.LastReload.Result != "success" || st.LastReload.Trigger != "admin" {
		t.Errorf("last_reload %+v, want an admin success", st.LastReload)
	}
}

// An unchanged admin.address keeps the running socket across a reload
// that changes listeners.
func TestReloadKeepsEndpoint(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	addr := f.admin.Addr()
	f.write(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e2", "tcp", "127.0.0.1:0")))
	if code, resp := admintest.PostReload(t, "http://"+addr); code != 200 || len(resp.Added) != 1 {
		t.Fatalf("reload: %d %+v", code, resp)
	}
	if got := f.admin.Addr(); got != addr {
		t.Fatalf("Addr %q, want the same socket %q", got, addr)
	}
	if r := admintest.Do(t, "GET", "http://"+addr+"/healthz"); r.Code != 200 {
		t.Fatalf("/healthz after reload: %d", r.Code)
	}
}

// An admin.address already in use fails the reload as a whole: listeners
// stay as they were and the endpoint stays where it is.
func TestReloadAdminAddressInUse(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	base := f.url(t)
	before := admintest.Status(t, base)
	taken := admintest.Occupy(t)

	f.write(t, admintest.ConfigYAML(taken,
		admintest.Listener("e", "tcp", "127.0.0.1:0"),
		admintest.Listener("added", "tcp", "127.0.0.3:0")))
	code, resp := admintest.PostReload(t, base)
	if code != http.StatusInternalServerError || resp.Result != "failure" {
		t.Fatalf("reload onto a taken address: %d %+v, want 500 failure", code, resp)
	}
	if len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0], "admin.address") || !strings.Contains(resp.Errors[0], "address already in use") {
		t.Errorf("errors %q, want admin.address: ... address already in use", resp.Errors)
	}
	if _, ok := f.sup.Addr("added"); ok {
		t.Error("listener \"added\" was bound by a failed reload")
	}
	after := admintest.Status(t, base)
	if after.Config.SHA256 != before.Config.SHA256 || len(after.Listeners) != 1 || !reflect.DeepEqual(after.Listeners[0], before.Listeners[0]) {
		t.Errorf("listeners changed by a failed reload: %+v -> %+v", before.Listeners, after.Listeners)
	}
	if got := "http://" + f.admin.Addr(); got != base {
		t.Errorf("endpoint moved to %s on a failed reload", got)
	}
}

// When the supervisor refuses the config after the endpoint bound its new
// address, the new socket is closed again (Abort) and the old one serves.
func TestReloadAbortClosesNewEndpoint(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	base := f.url(t)
	newAddr := admintest.FreeAddr(t, "127.0.0.2")
	taken := admintest.Occupy(t)

	f.write(t, admintest.ConfigYAML(newAddr, admintest.Listener("e", "tcp", "127.0.0.1:0"), admintest.Listener("clash", "tcp", taken)))
	code, resp := admintest.PostReload(t, base)
	if code != http.StatusInternalServerError || len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0], "clash") {
		t.Fatalf("reload with a taken listener address: %d %+v, want 500 naming the listener", code, resp)
	}
	if !refused(newAddr) {
		t.Errorf("the aborted endpoint address %s still accepts", newAddr)
	}
	if got := "http://" + f.admin.Addr(); got != base {
		t.Errorf("endpoint at %s after an aborted move, want %s", got, base)
	}
	if r := admintest.Do(t, "GET", base+"/healthz"); r.Code != 200 {
		t.Errorf("old endpoint /healthz: %d", r.Code)
	}
}

// admin.address "" turns the endpoint off; setting it again turns it on.
func TestReloadTurnsEndpointOffAndOn(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	addr := f.admin.Addr()
	f.write(t, admintest.ConfigYAML("", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	if code, _ := admintest.PostReload(t, "http://"+addr); code != http.StatusOK {
		t.Fatalf("turning off: %d", code)
	}
	if got := f.admin.Addr(); got != "" {
		t.Fatalf("Addr %q, want off", got)
	}
	if !refused(addr) {
		t.Errorf("%s still accepts with the endpoint off", addr)
	}

	// With the endpoint off, a signal or file save reloads.
	f.write(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	if _, err := f.rl.Reload(t.Context(), "signal"); err != nil {
		t.Fatal(err)
	}
	if r := admintest.Do(t, "GET", f.url(t)+"/healthz"); r.Code != 200 {
		t.Errorf("/healthz after turning on: %d", r.Code)
	}
}

// An admin.address in use at start fails the start, and nothing is bound.
func TestStartFailsWhenAdminAddressInUse(t *testing.T) {
	taken := admintest.Occupy(t)
	f, err := startFixture(t, admintest.ConfigYAML(taken, admintest.Listener("e", "tcp", "127.0.0.1:0")))
	if err == nil || !strings.Contains(err.Error(), "admin.address") {
		t.Fatalf("start error %v, want one naming admin.address", err)
	}
	if st := f.sup.Status(); len(st) != 0 {
		t.Errorf("listeners %+v bound by a failed start", st)
	}
	if f.admin.Addr() != "" {
		t.Error("endpoint on after a failed start")
	}
}

// After Close, a reload fails rather than start an endpoint nobody stops.
func TestPrepareAfterClose(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	addr := f.admin.Addr()
	if err := f.admin.Close(); err != nil {
		t.Fatal(err)
	}
	if !refused(addr) {
		t.Errorf("%s still accepts after Close", addr)
	}
	f.write(t, admintest.ConfigYAML("127.0.0.2:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	if _, err := f.rl.Reload(t.Context(), "signal"); err == nil {
		t.Fatal("reload after Close succeeded")
	}
	if f.admin.Addr() != "" {
		t.Error("endpoint on after Close")
	}
}
