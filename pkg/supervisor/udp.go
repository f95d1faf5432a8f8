package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/fdbudget"
	"github.com/sluice-dev/sluice/pkg/listener"
)

// UDP listeners. A UDP socket has no accept: the read loop turns the
// first datagram from a client address into a chain.Flow, and the flow
// table maps later datagrams from that address to it. Flows are to UDP
// what connections are to streams, and they are accounted the same way:
// a flow belongs to the generation it started on (a reload gives new
// flows the new chain, old flows finish on theirs), counts as a
// connection in the metrics, and ends when it has been quiet for the
// listener's idle_timeout (chain.DefaultFlowIdleTimeout when that is 0).
//
// UDP has nothing to drain once its socket is closed: when a UDP listener
// stops (removed, moved to another address, shutdown), its flows end at
// once, which lets handlers release their upstream sockets.

// DefaultMaxFlows bounds a UDP listener's flow table. A datagram from a
// new address while the table is full is dropped (and logged, at most
// every fullWarnEvery), so that a flood of spoofed source addresses costs
// bounded memory and never evicts the flows already established.
const DefaultMaxFlows = 16384

const fullWarnEvery = 10 * time.Second

// maxFlows is DefaultMaxFlows; tests lower it.
var maxFlows = DefaultMaxFlows

// listen binds l's socket. A UDP socket is returned as a *udpSocket,
// which stands in the runner's net.Listener slot so that binding, keeping
// the socket across reloads, closing it and reporting its address are
// one code path for both kinds of listener; runner.start tells them
// apart.
func listen(ctx context.Context, l config.Listener) (net.Listener, error) {
	if l.IsStream() {
		return listener.ListenStream(ctx, specOf(l))
	}
	pc, err := listener.ListenPacket(ctx, specOf(l))
	if err != nil {
		return nil, err
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		_ = pc.Close()
		return nil, fmt.Errorf("listen %s %s: not a UDP socket (%T)", l.Network, l.Address, pc)
	}
	return newUDPSocket(uc), nil
}

// flowIdle is how long a flow of l may stay quiet.
func flowIdle(l config.Listener) time.Duration {
	if l.IdleTimeout > 0 {
		return l.IdleTimeout
	}
	return chain.DefaultFlowIdleTimeout
}

// udpSocket is a bound UDP socket with its flow table.
type udpSocket struct {
	pc        *net.UDPConn
	closed    chan struct{}
	closeOnce sync.Once
	// pkt is reused for every datagram: the read loop is its only user.
	pkt chain.Packet
	// reply is pc.WriteToUDPAddrPort, bound once rather than per flow.
	reply func([]byte, netip.AddrPort) (int, error)

	mu       sync.Mutex
	flows    map[netip.AddrPort]*udpFlow
	max      int
	marks    int          // entries of flows that are failure marks (udphold.go)
	lastWarn atomic.Int64 // unix nanoseconds of the last "table full" warning
}

func newUDPSocket(pc *net.UDPConn) *udpSocket {
	u := &udpSocket{
		pc:     pc,
		closed: make(chan struct{}),
		flows:  make(map[netip.AddrPort]*udpFlow),
		max:    maxFlows,
	}
	u.reply = pc.WriteToUDPAddrPort
	return u
}

// Accept blocks until the socket is closed: a UDP socket accepts no
// connections, and the runner never asks it to.
func (u *udpSocket) Accept() (net.Conn, error) {
	<-u.closed
	return nil, net.ErrClosed
}

// Addr is the bound address.
func (u *udpSocket) Addr() net.Addr { return u.pc.LocalAddr() }

// Close closes the socket, which ends the read loop.
func (u *udpSocket) Close() error {
	u.closeOnce.Do(func() { close(u.closed) })
	return u.pc.Close()
}

// udpFlow is one flow table entry.
type udpFlow struct {
	s     *Supervisor
	u     *udpSocket
	addr  netip.AddrPort
	flow  *chain.Flow
	gen   *generation
	idle  time.Duration
	timer *time.Timer
	live  *connBytes // the flow's part of sluice_bytes_total (bytes.go)
	// prior is the failures in a row from this address before this
	// flow; fails and failedAt are set, under u.mu, once the flow has
	// failed and its entry became a failure mark (udphold.go).
	prior    int
	fails    int
	failedAt time.Time
}

// startUDP runs the read loop in a goroutine owned by the supervisor;
// it ends when stop closes the socket, after ending the socket's flows.
func (r *runner) startUDP(u *udpSocket) {
	r.acceptDone = make(chan struct{})
	r.s.wg.Add(1)
	go func() {
		defer r.s.wg.Done()
		defer close(r.acceptDone)
		log := r.gen.Load().log
		err := listener.ReadPackets(u.pc, log, func(b []byte, from netip.AddrPort) {
			u.serve(r, b, from)
		})
		if err != nil {
			log.Error("read loop ended", "error", err)
		}
		u.endAll()
	}()
}

// serve hands one datagram to its flow's chain, starting the flow when
// the address is new.
func (u *udpSocket) serve(r *runner, b []byte, from netip.AddrPort) {
	e := u.lookup(from)
	if e == nil {
		if e = u.start(r, from); e == nil {
			return
		}
	}
	e.flow.AddIn(int64(len(b)))
	u.pkt.Data, u.pkt.Flow = b, e.flow
	err := e.gen.servePacket(&u.pkt)
	u.pkt.Data, u.pkt.Flow = nil, nil
	if err != nil {
		e.flow.Close(err)
	}
}

// lookup finds the live flow of from and marks it active. The mark is
// made under the table's lock, which expire holds too, so a flow found
// here cannot expire before its datagram is served.
func (u *udpSocket) lookup(from netip.AddrPort) *udpFlow {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.flows[from]
	if e == nil || e.flow.Ended() {
		return nil
	}
	e.flow.Touch()
	return e
}

// start makes a new flow for from on the listener's current generation,
// or returns nil when the table is full or from's failures are held.
func (u *udpSocket) start(r *runner, from netip.AddrPort) *udpFlow {
	u.mu.Lock()
	m := u.flows[from]
	if m != nil && m.failedAt.IsZero() && m.flow.Ended() && m.flow.Err() != nil {
		// Failed, its release under way on another goroutine (a
		// relay that saw ICMP port unreachable): it counts already.
		u.failed(m)
	}
	m = u.mark(m)
	held := m.held()
	prior := 0
	if m != nil {
		prior = m.fails
	}
	full := len(u.flows)-u.marks >= u.max
	u.mu.Unlock()
	if held {
		return nil
	}
	if full {
		u.warnFull(r.gen.Load().log)
		return nil
	}
	for {
		g := r.gen.Load()
		e := &udpFlow{s: r.s, u: u, addr: from, gen: g, idle: flowIdle(g.cfg), prior: prior}
		e.flow = chain.NewFlow(chain.FlowConfig{
			ID:          r.s.connID.Add(1),
			Listener:    g.cfg.Name,
			Remote:      from,
			Local:       u.pc.LocalAddr(),
			IdleTimeout: e.idle,
			Logger:      g.log,
			Reply:       u.reply,
			Release:     e.release,
		})
		// The timer field is only touched under u.mu: its callback may
		// run on another goroutine before AfterFunc's result is stored.
		u.mu.Lock()
		e.timer = time.AfterFunc(e.idle, e.expire)
		u.mu.Unlock()
		// Counted before the flow can be seen, so that release, which
		// may run as soon as the generation knows the flow, always
		// undoes a count that was made.
		g.metrics.Active.Inc()
		g.open.Add(1)
		e.live = &connBytes{c: e.flow, m: g.metrics}
		if !g.addFlow(e.flow, e.live) {
			// Retired between Load and addFlow: a newer generation
			// has been swapped in; take that one.
			u.mu.Lock()
			e.timer.Stop()
			u.mu.Unlock()
			g.metrics.Active.Dec()
			g.open.Add(-1)
			continue
		}
		g.metrics.Total.Inc()
		u.mu.Lock()
		if !e.flow.Ended() {
			if m := u.mark(u.flows[from]); m != nil {
				u.forget(m)
			}
			u.flows[from] = e
		}
		u.mu.Unlock()
		return e
	}
}

func (u *udpSocket) warnFull(log hclog.Logger) {
	now := time.Now().UnixNano()
	last := u.lastWarn.Load()
	if now-last < int64(fullWarnEvery) || !u.lastWarn.CompareAndSwap(last, now) {
		return
	}
	log.Warn("flow table full; dropping datagrams from new addresses", "flows", u.max)
}

// expire ends the flow if it has been quiet for its idle timeout, and
// otherwise re-arms the timer for the time left. Re-arming lazily costs
// one timer callback per idle period instead of a timer reset per
// datagram.
func (e *udpFlow) expire() {
	u := e.u
	u.mu.Lock()
	if e.flow.Ended() {
		// A failure mark's time is up (udphold.go).
		if u.mark(e) != nil && u.flows[e.addr] == e {
			u.forget(e)
		}
		u.mu.Unlock()
		return
	}
	if quiet := e.flow.IdleFor(); quiet < e.idle {
		e.timer.Reset(e.idle - quiet)
		u.mu.Unlock()
		return
	}
	if u.flows[e.addr] == e {
		delete(u.flows, e.addr)
	}
	u.mu.Unlock()
	e.flow.Close(nil)
}

// release runs once when the flow has ended, after the handlers' OnEnd
// functions: the flow leaves the table (a failed one stays as its
// address's failure mark, udphold.go) and its generation, and its counts
// go to the listener's metrics.
func (e *udpFlow) release(f *chain.Flow) {
	u := e.u
	ok := f.Err() == nil
	u.mu.Lock()
	if u.mark(e) == nil { // start may have made it one already
		e.timer.Stop()
		if u.flows[e.addr] == e && (ok || !u.failed(e)) {
			delete(u.flows, e.addr)
		}
	}
	u.mu.Unlock()
	g := e.gen
	// Bytes, the shortage count and the log line first: once the gauge
	// reads 0, the counters are final and the flow's end is logged, as a
	// connection's is (serve logs before its deferred decrement).
	e.live.flush()
	if err := f.Err(); err != nil && fdbudget.IsShortage(err) {
		g.metrics.Shortage.Inc()
	}
	logFlowEnd(g.log, g.warns, f)
	g.metrics.Active.Dec()
	g.open.Add(-1)
	g.removeFlow(f)
}

// endAll ends every flow of the socket; the read loop calls it when the
// socket has been closed, since nothing could reach those clients now.
func (u *udpSocket) endAll() {
	u.mu.Lock()
	es := make([]*udpFlow, 0, len(u.flows))
	for _, e := range u.flows {
		es = append(es, e)
	}
	clear(u.flows)
	u.marks = 0
	u.mu.Unlock()
	for _, e := range es {
		e.flow.Close(nil)
	}
}

// servePacket runs the chain on one datagram; a panic ends this flow only.
func (g *generation) servePacket(p *chain.Packet) (err error) {
	defer func() {
		if v := recover(); v != nil {
			p.Flow.Logger().Error("handler panicked; flow ended", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	return g.packet.ServePacket(g.ctx, p)
}

// addFlow registers f; like add, it fails once the generation has been
// retired, so that a flow that starts after a reload's swap always takes
// the new chain, and a retired chain's count of flows only goes down.
func (g *generation) addFlow(f *chain.Flow, b *connBytes) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.retired {
		return false
	}
	g.flows[f] = b
	return true
}

// removeFlow forgets f and closes a retired generation whose last
// connection or flow this was.
func (g *generation) removeFlow(f *chain.Flow) {
	g.mu.Lock()
	delete(g.flows, f)
	last := g.left()
	g.mu.Unlock()
	if last {
		g.close(causeDrained)
	}
}

// logFlowEnd logs a flow's end once, like logConnEnd: at debug when it
// went quiet or its listener stopped, at warn when a handler failed.
func logFlowEnd(base hclog.Logger, w *warnLimiter, f *chain.Flow) {
	err := f.Err()
	if errors.Is(err, chain.ErrRejected) {
		return // the rejecting handler logged it, with its reason
	}
	level := hclog.Debug
	if err != nil && !clientGone(err) {
		level = hclog.Warn
	}
	if base.GetLevel() > level {
		return
	}
	if err == nil {
		f.Logger().Debug("flow ended", "duration", time.Since(f.Start()), "bytes_in", f.BytesIn(), "bytes_out", f.BytesOut())
		return
	}
	w.log(f.Logger(), level, "flow failed", "error", err, "duration", time.Since(f.Start()), "bytes_in", f.BytesIn(), "bytes_out", f.BytesOut())
}
