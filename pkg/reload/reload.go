// Package reload turns reload triggers (SIGHUP, a saved config file, the
// admin endpoint) into one serialized path: load the file, apply it to
// the supervisor as one transaction, log one line, count the result.
package reload

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/logging"
	"github.com/sluice-dev/sluice/pkg/metrics"
	"github.com/sluice-dev/sluice/pkg/supervisor"
)

// Reloader reloads one config file into one supervisor.
type Reloader struct {
	path    string
	sup     *supervisor.Supervisor
	rootLog hclog.Logger
	log     hclog.Logger
	metrics *metrics.Metrics

	// mu serializes reloads: two triggers at once load and apply in turn.
	mu sync.Mutex
	// OnApplied, when set, runs after each successful reload that changed
	// something, with the new config (e.g. to move the admin endpoint).
	OnApplied func(*config.Config)
}

// New returns a Reloader; root is the logger whose level follows the
// config's log section.
func New(path string, sup *supervisor.Supervisor, root hclog.Logger, m *metrics.Metrics) *Reloader {
	return &Reloader{path: path, sup: sup, rootLog: root, log: root.Named("reload"), metrics: m}
}

// Reload loads the config file and applies it. trigger names what asked
// for it (signal, file, admin) in the log line.
func (r *Reloader) Reload(ctx context.Context, trigger string) (supervisor.Summary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := config.Load(r.path)
	if err != nil {
		return r.failed(trigger, err)
	}
	sum, err := r.sup.Apply(ctx, cfg)
	if err != nil {
		return r.failed(trigger, fmt.Errorf("%s: %w", r.path, err))
	}
	r.metrics.ConfigReloads.WithLabelValues("success").Inc()
	r.metrics.LastReloadSuccessTime.Set(float64(time.Now().UnixNano()) / 1e9)
	if sum.Unchanged {
		r.log.Info("config unchanged; nothing to do", "trigger", trigger, "sha256", short(cfg.Hash))
		return sum, nil
	}
	logging.Apply(r.rootLog, cfg.Log)
	r.log.Info("config reloaded", "trigger", trigger, "sha256", short(cfg.Hash),
		"added", list(sum.Added), "removed", list(sum.Removed), "changed", list(sum.Changed))
	if r.OnApplied != nil {
		r.OnApplied(cfg)
	}
	return sum, nil
}

func (r *Reloader) failed(trigger string, err error) (supervisor.Summary, error) {
	r.metrics.ConfigReloads.WithLabelValues("failure").Inc()
	r.log.Error("config reload failed", "trigger", trigger, "error", oneLine(err))
	return supervisor.Summary{}, err
}

func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func list(names []string) string {
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}

// oneLine joins a multi-error's lines so that one failed reload is one
// log record.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
