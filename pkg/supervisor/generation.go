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
// until they end or the drain timeout passes.
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

	mu      sync.Mutex
	conns   connList
	flows   map[*chain.Flow]*connBytes // UDP flows (udp.go)
	retired bool
	closed  bool
	timer   *time.Timer
	// done is closed when the generation is closed; drained counts how
	// its connections ended.
	done chan struct{}
}

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
// and its drain timer covers every connection it has.
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
	last := g.retired && g.members() == 0
	g.mu.Unlock()
	if last {
		g.close()
	}
}

// members counts open connections and flows; g.mu must be held.
func (g *generation) members() int { return g.conns.n + len(g.flows) }

// active is the number of open connections (UDP: flows).
func (g *generation) active() int {
	g.mu.Lock()
	defer g.mu.Unlock()
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

// retire stops the generation from taking new work. Its handlers are
// closed when its last connection ends or, at the latest, after drain;
// then any connection still open is closed.
func (g *generation) retire(drain time.Duration) {
	g.mu.Lock()
	if g.retired {
		g.mu.Unlock()
		return
	}
	g.retired = true
	empty := g.members() == 0
	if !empty {
		g.timer = time.AfterFunc(drain, g.close)
	}
	g.mu.Unlock()
	if empty {
		g.close()
	}
}

// close force-closes the remaining connections, cancels the context and
// closes the handlers. It runs once.
func (g *generation) close() {
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
	g.mu.Unlock()
	if g.set != nil {
		g.set.remove(g)
	}

	if n := len(forced) + len(flows); n > 0 {
		g.log.Info("drain timeout: closing remaining connections", "connections", n)
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
	close(g.done)
}
