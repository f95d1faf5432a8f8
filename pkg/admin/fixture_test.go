package admin_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/admin"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/reload"
	"github.com/sluice-dev/sluice/pkg/supervisor"

	_ "github.com/sluice-dev/sluice/plugins/echo" // the chains' terminal handler
)

// fixture is sluice assembled in-process the way cmd/sluice does it: one
// supervisor, one reloader, the admin endpoint as its stage.
type fixture struct {
	path    string
	metrics *metrics.Metrics
	sup     *supervisor.Supervisor
	rl      *reload.Reloader
	admin   *admin.Admin
}

// newFixture starts sluice on yaml; the test fails if it cannot start.
func newFixture(t *testing.T, yaml string) *fixture {
	t.Helper()
	f, err := startFixture(t, yaml)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return f
}

// startFixture is newFixture for tests that expect the start to fail.
// Everything is shut down when the test ends, either way.
func startFixture(t *testing.T, yaml string) (*fixture, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, path, yaml)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "sluice", Level: hclog.Debug, Output: testWriter{t}})
	f := &fixture{path: path, metrics: metrics.New()}
	f.sup = supervisor.New(log.Named("supervisor"), f.metrics)
	f.rl = reload.New(path, f.sup, log, f.metrics)
	f.admin = admin.New(admin.Options{Log: log.Named("admin"), Metrics: f.metrics, Supervisor: f.sup, Reloader: f.rl})
	f.rl.AddStage(f.admin)
	t.Cleanup(func() {
		_ = f.sup.Shutdown(context.Background())
		if err := f.admin.Close(); err != nil {
			t.Errorf("admin close: %v", err)
		}
	})
	return f, f.rl.Start(context.Background(), cfg)
}

// url is the running endpoint's base URL.
func (f *fixture) url(t *testing.T) string {
	t.Helper()
	addr := f.admin.Addr()
	if addr == "" {
		t.Fatal("admin endpoint is off")
	}
	return "http://" + addr
}

func (f *fixture) write(t *testing.T, yaml string) { writeFile(t, f.path, yaml) }

// testWriter sends log lines to t.Log, so that they show with a failure
// and only then. Logging after the test ended is dropped.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // t.Log after the test ended panics
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}
