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

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
)

// ErrClosed is returned by Apply after Shutdown has begun.
var ErrClosed = errors.New("supervisor is shutting down")

// Supervisor owns every socket, accept loop and connection goroutine.
type Supervisor struct {
	log     hclog.Logger
	metrics *metrics.Metrics
	// shared keeps handlers' state across reloads (chain.Shared).
	shared *chain.Shared

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
	wg      sync.WaitGroup
	workers workers
}

// New returns a supervisor serving nothing. m may be nil (tests); a
// private set of collectors is made then.
func New(log hclog.Logger, m *metrics.Metrics) *Supervisor {
	if m == nil {
		m = metrics.New()
	}
	s := &Supervisor{
		log:     log,
		metrics: m,
		shared:  chain.NewShared(),
		runners: make(map[string]*runner),
		open:    make(map[string]*atomic.Int64),
	}
	s.workers.init(s)
	return s
}

// Shared is the store in which handlers keep state across reloads; tests
// look into it.
func (s *Supervisor) Shared() *chain.Shared { return s.shared }

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
	// Connections counts open connections (UDP: flows) on every
	// generation of the listener, the retired ones included.
	Connections int `json:"connections"`
	// RetiredConnections is the part of Connections still on a chain a
	// reload replaced, or on the listener itself once a reload removed
	// it.
	RetiredConnections int `json:"retired_connections"`
	// Removed marks a listener a reload removed whose connections are
	// still open: it is listed until the last one ends.
	Removed bool `json:"removed"`
	// Handlers has the state of the current chain's handlers that report
	// one (chain.StatusReporter), in chain order.
	Handlers []HandlerStatus `json:"handlers,omitempty"`
}

// HandlerStatus is one handler's state in /status.
type HandlerStatus struct {
	// Index is the handler's place in the listener's chain.
	Index   int    `json:"index"`
	Handler string `json:"handler"`
	Status  any    `json:"status"`
}

// handlerStatus collects what g's handlers report.
func handlerStatus(g *generation) []HandlerStatus {
	var out []HandlerStatus
	for i, h := range g.handlers {
		if r, ok := h.(chain.StatusReporter); ok {
			out = append(out, HandlerStatus{Index: i, Handler: g.cfg.Chain[i].Handler, Status: r.Status()})
		}
	}
	return out
}

// Status lists the running listeners, and the removed ones that still
// have connections, sorted by name.
func (s *Supervisor) Status() []ListenerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	byName := make(map[string]*ListenerStatus, len(s.runners))
	for _, r := range s.runners {
		g := r.gen.Load()
		byName[g.cfg.Name] = &ListenerStatus{
			Name:        g.cfg.Name,
			Network:     g.cfg.Network,
			Address:     r.ln.Addr().String(),
			Connections: int(g.open.Load()),
			Handlers:    handlerStatus(g),
		}
	}
	for _, g := range s.gens.list() {
		n := g.retiredConns()
		if n == 0 {
			continue
		}
		st, ok := byName[g.cfg.Name]
		if !ok {
			st = &ListenerStatus{
				Name:        g.cfg.Name,
				Network:     g.cfg.Network,
				Address:     g.addr,
				Connections: int(g.open.Load()),
				Removed:     true,
			}
			byName[g.cfg.Name] = st
		}
		st.RetiredConnections += n
	}
	out := make([]ListenerStatus, 0, len(byName))
	for _, st := range byName {
		out = append(out, *st)
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

// Shutdown stops accepting on every listener, lets open connections
// finish for up to the config's shutdown.drain_timeout (those on chains a
// reload retired included, whatever reload.drain_timeout says), closes the
// rest and returns once every goroutine it started has ended. ctx cuts the
// wait short: its end closes what is left at once.
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

	for _, r := range runners {
		r.stop()
	}
	for _, r := range runners {
		r.gen.Load().retire(false, 0)
	}
	// Every generation still open: the current ones just retired, and
	// the ones earlier reloads retired. Nothing adds to the set now.
	gens := s.gens.list()
	open := 0
	for _, g := range gens {
		open += g.active()
	}
	s.log.Info("shutdown started", "listeners", len(runners), "connections", open, "drain_timeout", drain)
	start := time.Now()
	forcedBefore := s.forced.Load()
	done := make(chan struct{})
	// No connection is accepted any more: waiting workers can go.
	s.workers.close()
	go func() {
		drainAll(gens)
		s.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(drain)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
	for _, g := range gens {
		g.close(causeShutdown)
	}
	<-done
	forced := s.forced.Load() - forcedBefore
	s.log.Info("shutdown finished", "duration", time.Since(start).Round(time.Millisecond),
		"finished", int64(open)-forced, "closed_at_drain_timeout", forced)
	return nil
}
