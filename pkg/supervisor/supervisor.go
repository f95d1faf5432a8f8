// Package supervisor runs a config: it binds listeners, serves
// connections through their chains, applies a new config as one
// transaction (see Apply), and drains on shutdown.
package supervisor

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
)

// ErrClosed is returned by Apply after Shutdown has begun.
var ErrClosed = errors.New("supervisor is shutting down")

// Supervisor owns every socket, accept loop and connection goroutine.
type Supervisor struct {
	log     hclog.Logger
	metrics *metrics.Metrics

	// mu serializes Apply and Shutdown; the per-connection path never
	// takes it.
	mu      sync.Mutex
	cfg     *config.Config
	runners map[string]*runner // by config.Listener.BindKey
	closing bool
	// drain is SetDrainTimeout's value, used while cfg is nil.
	drain    time.Duration
	drainSet bool
	// open counts open connections per listener name, across the
	// generations and sockets a name has had.
	open map[string]*atomic.Int64
	// warns holds each listener name's warning limiter (warnlimit.go).
	warns map[string]*warnLimiter

	// gens holds the generations that may have open connections (see
	// FlushBytes).
	gens genSet

	connID atomic.Uint64
	forced atomic.Int64
	// wg counts every goroutine the supervisor started: accept loops and
	// connections. Shutdown waits for it.
	wg sync.WaitGroup
}

// New returns a supervisor serving nothing. m may be nil (tests); a
// private set of collectors is made then.
func New(log hclog.Logger, m *metrics.Metrics) *Supervisor {
	if m == nil {
		m = metrics.New()
	}
	return &Supervisor{
		log:     log,
		metrics: m,
		runners: make(map[string]*runner),
		open:    make(map[string]*atomic.Int64),
	}
}

// Config returns the running config (nil before the first Apply).
func (s *Supervisor) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Closing reports whether Shutdown has begun: from then on Apply refuses
// every config, an unchanged one included.
func (s *Supervisor) Closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// SetDrainTimeout sets the drain timeout Shutdown uses while no config
// has been applied yet: a start that failed halfway still shuts down, and
// says so, with the configured timeout rather than the default.
func (s *Supervisor) SetDrainTimeout(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drain, s.drainSet = d, true
}

// Summary says what an Apply changed, by listener name.
type Summary struct {
	Added, Removed, Changed []string
	// Unchanged is true when the config's hash matched the running one
	// and nothing was done.
	Unchanged bool
}

// ListenerStatus is one listener as it runs now.
type ListenerStatus struct {
	Name    string `json:"name"`
	Network string `json:"network"`
	Address string `json:"address"`
	// Connections counts open connections on every generation of the
	// listener, the retiring ones included.
	Connections int `json:"connections"`
}

// Status lists the running listeners, sorted by name.
func (s *Supervisor) Status() []ListenerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ListenerStatus, 0, len(s.runners))
	for _, r := range s.runners {
		g := r.gen.Load()
		out = append(out, ListenerStatus{
			Name:        g.cfg.Name,
			Network:     g.cfg.Network,
			Address:     r.ln.Addr().String(),
			Connections: int(g.open.Load()),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Addr returns the bound address of the listener called name, which tells
// tests the port picked for ":0".
func (s *Supervisor) Addr(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.runners {
		if g := r.gen.Load(); g.cfg.Name == name {
			return r.ln.Addr().String(), true
		}
	}
	return "", false
}

// Shutdown stops accepting on every listener, lets open connections finish
// for up to the config's drain timeout, closes the rest and returns once
// every goroutine it started has ended. ctx cuts the wait short: its end
// closes what is left at once.
func (s *Supervisor) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closing = true
	drain := config.DefaultDrainTimeout
	if s.drainSet {
		drain = s.drain
	}
	if s.cfg != nil {
		drain = s.cfg.Shutdown.DrainTimeout
	}
	runners := s.runners
	s.runners = map[string]*runner{}
	s.mu.Unlock()

	var gens []*generation
	open := 0
	for _, r := range runners {
		r.stop()
	}
	for _, r := range runners {
		g := r.gen.Load()
		open += g.active()
		gens = append(gens, g)
	}
	s.log.Info("shutdown started", "listeners", len(runners), "connections", open, "drain_timeout", drain)
	start := time.Now()
	forcedBefore := s.forced.Load()
	for _, g := range gens {
		g.retire(drain)
	}
	done := make(chan struct{})
	go func() {
		drainAll(gens)
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		for _, g := range gens {
			g.close()
		}
		<-done
	}
	forced := s.forced.Load() - forcedBefore
	s.log.Info("shutdown finished", "duration", time.Since(start).Round(time.Millisecond),
		"finished", int64(open)-forced, "closed_at_drain_timeout", forced)
	return nil
}
