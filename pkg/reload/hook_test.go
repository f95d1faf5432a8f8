package reload_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/reload"
	"github.com/sluice-dev/sluice/pkg/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Hook that writes down what it is told.
type recorder struct{ events []string }

func (r *recorder) ReloadBegin(trigger string) { r.events = append(r.events, "begin "+trigger) }
func (r *recorder) ReloadEnd(trigger string, err error) {
	r.events = append(r.events, fmt.Sprintf("end %s ok=%v", trigger, err == nil))
}

// TestHooksSeeEveryReload: every Reload, whatever its outcome, is one
// begin and one end, in that order; the first config (Start) is not a
// reload. sd_notify relies on this to say RELOADING=1 then READY=1.
func TestHooksSeeEveryReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("log: {level: info}\nlisteners: []\n")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sup := supervisor.New(hclog.NewNullLogger(), nil)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = sup.Shutdown(ctx)
	}()
	rl := reload.New(path, sup, hclog.NewNullLogger(), metrics.New())
	rec := &recorder{}
	rl.AddHook(rec)
	ctx := context.Background()
	if err := rl.Start(ctx, cfg); err != nil {
		t.Fatal(err)
	}

	write("log: {level: debug}\nlisteners: []\n")
	if _, err := rl.Reload(ctx, "signal"); err != nil {
		t.Fatalf("valid reload: %v", err)
	}
	if _, err := rl.Reload(ctx, "admin"); err != nil { // unchanged
		t.Fatalf("unchanged reload: %v", err)
	}
	write("log: {level: loud}\nlisteners: []\n")
	if _, err := rl.Reload(ctx, "file"); err == nil {
		t.Fatal("invalid config reloaded without an error")
	}
	want := []string{
		"begin signal", "end signal ok=true",
		"begin admin", "end admin ok=true",
		"begin file", "end file ok=false",
	}
	if got := strings.Join(rec.events, "; "); got != strings.Join(want, "; ") {
		t.Errorf("hook events:\n got %s\nwant %s", got, strings.Join(want, "; "))
	}
}
