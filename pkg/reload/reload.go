// Package reload turns reload triggers (SIGHUP, a saved config file, the
// admin endpoint) into one serialized path: load the file, apply it to
// the supervisor as one transaction, log one line, count the result.
package reload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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
	hooks   []Hook // see AddHook; guarded by mu
	loader  Loader // see SetLoader; guarded by mu

	// mu serializes reloads: two triggers at once load and apply in turn.
	mu     sync.Mutex
	stages []Stage

	// last is the latest reload's result (see Last); read without mu so
	// that /status never waits for a reload in progress.
	last atomic.Pointer[Result]
}

// Stage is a part of the process outside the supervisor that a config
// change must reach too, within the same transaction: the admin endpoint,
// for one. Prepare runs before the supervisor applies the config and may
// fail the whole reload (say, the new admin address cannot be bound);
// after it succeeds, exactly one of the Pending's Commit or Abort follows.
type Stage interface {
	Prepare(ctx context.Context, cfg *config.Config) (Pending, error)
}

// Pending is a prepared Stage change.
type Pending interface {
	Commit()
	Abort()
}

// AddStage adds s to every later Apply and Reload. Stages are prepared in
// the order added.
func (r *Reloader) AddStage(s Stage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stages = append(r.stages, s)
}

// New returns a Reloader; root is the logger whose level follows the
// config's log section.
func New(path string, sup *supervisor.Supervisor, root hclog.Logger, m *metrics.Metrics) *Reloader {
	return &Reloader{path: path, sup: sup, rootLog: root, log: root.Named("reload"), metrics: m}
}

// Reload loads the config file and applies it. trigger names what asked
// for it (signal, file, admin) in the log line.
func (r *Reloader) Reload(ctx context.Context, trigger string) (sum supervisor.Summary, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sup.Closing() {
		return r.refused(trigger)
	}
	end := r.begin(trigger)
	defer func() { end(err) }()
	cfg, err := r.load(ctx)
	if trigger == TriggerFile && errors.Is(err, config.ErrEmpty) {
		// Most likely a truncate-and-write caught between the two (the
		// write's own event brings the reload), or an editor's buffer
		// saved blank: neither means "stop everything", nor is it an
		// error to act on at once. SIGHUP on such a file fails.
		r.log.Warn("config file is empty; keeping the running config", "config", r.path)
		return supervisor.Summary{}, err
	}
	if err != nil {
		return r.failed(trigger, err)
	}
	if ctx.Err() != nil {
		// sluice began shutting down while the file was read: applying
		// it now would only bind sockets that close again at once.
		r.log.Info("reload abandoned: shutting down", "trigger", trigger)
		return supervisor.Summary{}, ctx.Err()
	}
	return r.apply(ctx, cfg, trigger)
}

// TriggerFile is the trigger of a reload caused by a change of the file.
const TriggerFile = "file"

func (r *Reloader) apply(ctx context.Context, cfg *config.Config, trigger string) (supervisor.Summary, error) {
	sum := supervisor.Summary{Unchanged: true}
	// An unchanged config is caught before any stage is prepared, so
	// that it does not so much as re-bind the admin endpoint.
	if cur := r.sup.Config(); cur == nil || cur.Hash != cfg.Hash {
		var err error
		if sum, err = r.transact(ctx, cfg); err != nil {
			return r.failed(trigger, fmt.Errorf("%s: %w", r.path, err))
		}
	}
	r.metrics.ConfigReloads.WithLabelValues("success").Inc()
	r.metrics.LastReloadSuccessTime.Set(float64(time.Now().UnixNano()) / 1e9)
	r.record(trigger, "success", cfg.Hash, nil)
	if sum.Unchanged {
		r.log.Info("config unchanged; nothing to do", "trigger", trigger, "sha256", short(cfg.Hash))
		return sum, nil
	}
	// Log settings first, so that the line below is already in the new
	// format.
	logging.Apply(r.rootLog, cfg.Log)
	r.log.Info("config reloaded", "trigger", trigger, "sha256", short(cfg.Hash),
		"added", list(sum.Added), "removed", list(sum.Removed), "changed", list(sum.Changed))
	return sum, nil
}

func (r *Reloader) failed(trigger string, err error) (supervisor.Summary, error) {
	if errors.Is(err, supervisor.ErrClosed) {
		return r.refused(trigger)
	}
	r.metrics.ConfigReloads.WithLabelValues("failure").Inc()
	r.record(trigger, "failure", "", err)
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

// Start applies the first config: the same transaction as a reload, but a
// failure is the caller's to report (sluice run exits 1), and it is not
// counted as a failed reload.
func (r *Reloader) Start(ctx context.Context, cfg *config.Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.transact(ctx, cfg); err != nil {
		return err
	}
	r.metrics.LastReloadSuccessTime.Set(float64(cfg.LoadedAt.UnixNano()) / 1e9)
	return nil
}

// transact prepares every stage, applies cfg to the supervisor, then
// commits the stages, or aborts them all when anything failed.
func (r *Reloader) transact(ctx context.Context, cfg *config.Config) (supervisor.Summary, error) {
	var pending []Pending
	abort := func() {
		for i := len(pending) - 1; i >= 0; i-- {
			pending[i].Abort()
		}
	}
	for _, st := range r.stages {
		p, err := st.Prepare(ctx, cfg)
		if err != nil {
			abort()
			return supervisor.Summary{}, err
		}
		pending = append(pending, p)
	}
	sum, err := r.sup.Apply(ctx, cfg)
	if err != nil {
		abort()
		return supervisor.Summary{}, err
	}
	for _, p := range pending {
		p.Commit()
	}
	return sum, nil
}
