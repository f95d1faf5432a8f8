package supervisor

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/metrics"
)

// A generation is one compiled chain of one listener, with the
// connections that started on it. A reload that changes a listener's
// chain makes a new generation and retires the old one: new connections
// take the new chain, and the old chain lives on for its own connections
// until they end, or until reload.drain_timeout passes when it is set. So
// a reload never cuts a connection unless the operator asked for a bound.
type generation struct {
	cfg      config.Listener
	log      hclog.Logger
	stream   chain.StreamHandler
	packet   chain.PacketHandler // UDP listeners (udp.go); stream is nil then
	handlers []any
	metrics  *metrics.Listener
	// open is shared by all generations of one listener name.
	open *atomic.Int64
	// forced counts connections closed by a drain timeout, process-wide.
	forced *atomic.Int64
	// warns bounds the listener's per-connection warnings; shared by
	// all generations of one listener name.
	warns *warnLimiter

	// ctx is handed to handlers and cancelled when the generation is
	// closed, so that a dial or a wait inside a handler ends with it.
	ctx    context.Context
	cancel context.CancelFunc

	// set is where the generation is registered once committed; nil
	// before.
	set *genSet
	// addr is the socket's bound address, kept when a reload removes the
	// listener so that Status can still name it; guarded by
	// Supervisor.mu.
	addr string

	mu    sync.Mutex
	conns connList
	flows map[*chain.Flow]*connBytes // UDP flows (udp.go)
	// retired: the generation takes no new work. byReload tells a
	// reload's retirement, whose connections are the retired
	// connections of Status and sluice_retired_connections, from
	// shutdown's.
	retired   bool
	byReload  bool
	retiredAt time.Time
	// lingered is set when the generation had connections when it was
	// retired: its close is then worth a line.
	lingered bool
	// deadline and drain are the reload drain bound in force; a zero
	// deadline means none.
	deadline time.Time
	drain    time.Duration
	closed   bool
	timer    *time.Timer
	// done is closed when the generation is closed.
	done chan struct{}
}

// closeCause says why a generation is closed, which decides how a cut is
// logged.
type closeCause int

const (
	// causeDrained: its last connection ended, or it had none.
	causeDrained closeCause = iota
	// causeReloadDrain: reload.drain_timeout passed since retirement.
	causeReloadDrain
	// causeShutdown: shutdown.drain_timeout passed, or shutdown was cut
	// short.
	causeShutdown
)

func newGeneration(cfg config.Listener, log hclog.Logger, handlers []any, stream chain.StreamHandler, m *metrics.Listener, open *atomic.Int64) *generation {
	ctx, cancel := context.WithCancel(context.Background())
	return &generation{
		cfg:      cfg,
		log:      log,
		stream:   stream,
		handlers: handlers,
		metrics:  m,
		open:     open,
		ctx:      ctx,
		cancel:   cancel,
		flows:    make(map[*chain.Flow]*connBytes),
		done:     make(chan struct{}),
	}
}

// add registers t; it fails once the generation has been retired, and
// the caller then takes the listener's current generation instead (a
// generation is retired only after its successor was swapped in, or after
// its accept loop ended). So a retired chain never takes a new connection,
// and the count of retired connections taken at retirement only goes down.
func (g *generation) add(t *tracked) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.retired {
		return false
	}
	g.conns.push(t)
	return true
}

// remove forgets t and closes a retired generation whose last connection
// this was.
func (g *generation) remove(t *tracked) {
	g.mu.Lock()
	g.conns.remove(t)
	last := g.left()
	g.mu.Unlock()
	if last {
		g.close(causeDrained)
	}
}

// left accounts for one connection or flow that has just left the
// generation and reports whether the generation is now retired and
// empty; g.mu must be held.
func (g *generation) left() bool {
	if g.byReload {
		g.metrics.Retired.Dec()
	}
	return g.retired && g.members() == 0
}

// members counts open connections and flows; g.mu must be held.
func (g *generation) members() int { return g.conns.n + len(g.flows) }

// active is the number of open connections (UDP: flows).
func (g *generation) active() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.members()
}

// retiredConns is the number of open connections and flows that count as
// retired: those of a generation a reload retired and that is not closed
// yet.
func (g *generation) retiredConns() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.byReload || g.closed {
		return 0
	}
	return g.members()
}

// flushBytes brings sluice_bytes_total up to date with the bytes of the
// generation's open connections and flows.
func (g *generation) flushBytes() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for t := g.conns.head; t != nil; t = t.next {
		t.bytes.flush()
	}
	for _, b := range g.flows {
		b.flush()
	}
}

// retire stops the generation from taking new work; it closes (handlers
// closed, ctx cancelled) when its last connection ends, at once when it
// has none. byReload marks a reload's retirement: its connections count
// as retired, and drain, when > 0, bounds how long they may stay
// (reload.drain_timeout). Shutdown retires with byReload false and bounds
// the drain itself.
func (g *generation) retire(byReload bool, drain time.Duration) {
	g.mu.Lock()
	if g.retired {
		g.mu.Unlock()
		return
	}
	g.retired = true
	g.retiredAt = time.Now()
	n := g.members()
	if byReload {
		g.byReload = true
		g.lingered = n > 0
		g.metrics.Retired.Add(float64(n))
		g.boundLocked(drain)
	}
	g.mu.Unlock()
	if n == 0 {
		g.close(causeDrained)
	}
}

// bound makes a generation a reload retired close at the latest drain
// after its retirement, so that a reload which sets or lowers
// reload.drain_timeout applies it to the chains retired before it too. A
// bound never extends an earlier one, and 0 sets none.
func (g *generation) bound(drain time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.boundLocked(drain)
}

func (g *generation) boundLocked(drain time.Duration) {
	if drain <= 0 || !g.byReload || g.closed {
		return
	}
	at := g.retiredAt.Add(drain)
	if !g.deadline.IsZero() && !at.Before(g.deadline) {
		return
	}
	g.deadline, g.drain = at, drain
	if g.timer != nil {
		g.timer.Stop()
	}
	g.timer = time.AfterFunc(time.Until(at), func() { g.close(causeReloadDrain) })
}

// close force-closes the remaining connections, cancels the context and
// closes the handlers. It runs once.
func (g *generation) close(cause closeCause) {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	if g.timer != nil {
		g.timer.Stop()
	}
	forced := make([]*chain.Conn, 0, g.conns.n)
	for t := g.conns.head; t != nil; t = t.next {
		forced = append(forced, &t.conn)
	}
	flows := make([]*chain.Flow, 0, len(g.flows))
	for f := range g.flows {
		flows = append(flows, f)
	}
	lingered, retiredAt, drain := g.lingered, g.retiredAt, g.drain
	g.mu.Unlock()
	if g.set != nil {
		g.set.remove(g)
	}

	n := len(forced) + len(flows)
	if n > 0 {
		if cause == causeReloadDrain {
			// The operator bounded reloads' drains, but a client
			// still loses its connection: that is worth a warning.
			g.log.Warn("reload drain timeout: closing connections still on a retired chain",
				"connections", n, "drain_timeout", drain)
		} else {
			g.log.Info("drain timeout: closing remaining connections", "connections", n)
		}
		if g.forced != nil {
			g.forced.Add(int64(n))
		}
	}
	for _, c := range forced {
		_ = c.Raw().Close()
	}
	for _, f := range flows {
		f.Close(nil)
	}
	g.cancel()
	if err := chain.CloseAll(g.handlers); err != nil {
		g.log.Warn("closing handlers", "error", err)
	}
	if lingered {
		g.log.Info("retired chain closed", "duration", time.Since(retiredAt).Round(time.Millisecond), "connections_cut", n)
	}
	close(g.done)
}
