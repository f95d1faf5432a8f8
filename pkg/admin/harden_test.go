package admin_test

import (
	"net/http"
	"testing"

	"github.com/sluice-dev/sluice/internal/admintest"
)

// From the moment the endpoint says draining, POST /reload is refused
// with 503, before the supervisor has begun its shutdown too, and the
// refusal is no failed reload.
func TestReloadRefusedOnceDraining(t *testing.T) {
	f := newFixture(t, admintest.ConfigYAML("127.0.0.1:0", admintest.Listener("e", "tcp", "127.0.0.1:0")))
	f.admin.SetDraining()
	code, resp := admintest.PostReload(t, f.url(t))
	if code != http.StatusServiceUnavailable || len(resp.Errors) == 0 {
		t.Errorf("POST /reload while draining: %d %+v, want 503 with the reason", code, resp)
	}
	m := admintest.ScrapeMetrics(t, f.url(t))
	if v := m.Must(t, "sluice_config_reloads_total", "result", "failure"); v != 0 {
		t.Errorf("reloads failure %v, want 0", v)
	}
}
