package admin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/admin"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/upgrade"
)

type fakeUpgrader struct {
	pid int
	err error
}

func (f fakeUpgrader) Upgrade(string) (int, error) { return f.pid, f.err }

// POST /upgrade maps the upgrader's outcome to a status and a JSON body,
// and closes the connection so that the next request finds the new
// process.
func TestPostUpgrade(t *testing.T) {
	tests := []struct {
		name   string
		up     admin.Upgrader
		code   int
		result string
		pid    int
	}{
		{"success", fakeUpgrader{pid: 4321}, http.StatusOK, "success", 4321},
		{"new process failed", fakeUpgrader{err: fmt.Errorf("upgrade failed: %w", errors.New("new process: exit status 1"))}, http.StatusInternalServerError, "failure", 0},
		{"previous still drains", fakeUpgrader{err: fmt.Errorf("%w (pid 7)", upgrade.ErrDraining)}, http.StatusConflict, "refused", 0},
		{"in progress", fakeUpgrader{err: upgrade.ErrBusy}, http.StatusConflict, "refused", 0},
		{"not available", nil, http.StatusNotImplemented, "failure", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := admin.Options{Log: hclog.NewNullLogger(), Metrics: metrics.New()}
			if tc.up != nil {
				opts.Upgrader = tc.up
			}
			a := admin.New(opts)
			rec := httptest.NewRecorder()
			a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/upgrade", nil))
			if rec.Code != tc.code {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.code, rec.Body)
			}
			if rec.Header().Get("Connection") != "close" {
				t.Errorf("Connection: %q, want close", rec.Header().Get("Connection"))
			}
			var body admin.UpgradeResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Result != tc.result || body.PID != tc.pid || body.PreviousPID != os.Getpid() {
				t.Errorf("body %+v, want result %s pid %d previous_pid %d", body, tc.result, tc.pid, os.Getpid())
			}
			if tc.result != "success" && body.Error == "" {
				t.Error("no error message")
			}
		})
	}
	rec := httptest.NewRecorder()
	admin.New(admin.Options{Log: hclog.NewNullLogger(), Metrics: metrics.New()}).Handler().
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/upgrade", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /upgrade: %d, want 405", rec.Code)
	}
}
