package supervisor

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/fdbudget"
	"github.com/sluice-dev/sluice/pkg/listener"
)

// A runner owns one bound socket and its accept loop. It outlives
// generations: a reload that keeps a listener's network and address keeps
// its runner, and so its socket, and only swaps the generation that new
// connections take.
type runner struct {
	s   *Supervisor
	key string // config.Listener.BindKey
	ln  net.Listener
	gen atomic.Pointer[generation]
	// goKeepAlive: Go sets its default keepalive on what ln accepts.
	goKeepAlive bool

	acceptDone chan struct{}
}

// start runs the accept loop in a goroutine owned by the supervisor; it
// ends when stop closes the socket.
func (r *runner) start() {
	if u, ok := r.ln.(*udpSocket); ok {
		r.startUDP(u)
		return
	}
	r.acceptDone = make(chan struct{})
	r.s.wg.Add(1)
	go func() {
		defer r.s.wg.Done()
		defer close(r.acceptDone)
		log := r.gen.Load().log
		if err := listener.Accept(r.ln, log, r.handle); err != nil {
			log.Error("accept loop ended", "error", err)
		}
	}()
}

// stop closes the socket and waits for the accept loop to end, so that no
// connection can be accepted onto a generation after it is retired.
func (r *runner) stop() {
	_ = r.ln.Close()
	if r.acceptDone != nil {
		<-r.acceptDone
	}
}

// handle starts the goroutine that serves one accepted connection. The
// generation is read once: the connection keeps that chain to its end.
func (r *runner) handle(nc net.Conn) {
	t := new(tracked)
	for {
		g := r.gen.Load()
		t.conn.Init(nc, r.s.connID.Add(1), g.cfg.Name, g.cfg.IdleTimeout, g.log)
		if _, ok := nc.(*net.UnixConn); ok {
			// The listener's Addr is the configured path; the
			// socket's own name is the one it was bound under.
			t.conn.SetLocalAddr(r.ln.Addr())
		}
		t.conn.SetGo(r.s.workers.goFn)
		t.g, t.goKeepAlive = g, r.goKeepAlive
		t.bytes.c, t.bytes.m = &t.conn, g.metrics
		if !g.add(t) {
			// Retired between Load and add: a newer generation has
			// been swapped in; take that one.
			continue
		}
		r.s.workers.serve(t)
		return
	}
}

// serve runs the chain on t and cleans up after it, whatever the chain
// does: a panic closes this connection only.
func (s *Supervisor) serve(t *tracked) {
	g, c := t.g, &t.conn
	g.metrics.Total.Inc()
	g.metrics.Active.Inc()
	g.open.Add(1)
	defer func() {
		if p := recover(); p != nil {
			c.Logger().Error("handler panicked; connection closed", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
		_ = c.Raw().Close()
		// Bytes first: once the gauge reads 0, the byte counters are final.
		t.bytes.flush()
		g.metrics.Active.Dec()
		g.open.Add(-1)
		g.remove(t)
	}()
	if tc, ok := c.Raw().(*net.TCPConn); ok {
		// The generation's, so that a reload's tcp_keepalive applies
		// to the connections accepted after it.
		if err := listener.SetKeepAlive(tc, g.cfg.KeepAlive(), t.goKeepAlive); err != nil && g.log.IsDebug() {
			c.Logger().Debug("setting tcp_keepalive failed", "error", err)
		}
	}
	err := g.stream.ServeStream(g.ctx, c)
	if err != nil && fdbudget.IsShortage(err) {
		g.metrics.Shortage.Inc()
	}
	logConnEnd(g.log, g.warns, c, err)
}

// logConnEnd logs a connection's end once: at debug when it went well or
// the client went away, at warn otherwise. base is checked first so that a
// quiet connection never builds its own logger. Warnings go through w, so
// that a flood of failing connections writes a bounded log.
func logConnEnd(base hclog.Logger, w *warnLimiter, c *chain.Conn, err error) {
	if errors.Is(err, chain.ErrRejected) {
		return // the rejecting handler logged it, with its reason
	}
	if err == nil {
		if base.IsDebug() {
			c.Logger().Debug("connection closed", "bytes_in", c.BytesIn(), "bytes_out", c.BytesOut())
		}
		return
	}
	level := hclog.Warn
	if clientGone(err) {
		level = hclog.Debug
	}
	if base.GetLevel() > level {
		return
	}
	w.log(c.Logger(), level, "connection failed", "error", err, "bytes_in", c.BytesIn(), "bytes_out", c.BytesOut())
}

// clientGone tells errors that are the peer's doing (it reset, went away,
// or sat idle) from ones an operator may need to look at.
func clientGone(err error) bool {
	return errors.Is(err, chain.ErrIdleTimeout) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// drainAll waits for the given generations to close. It is used by
// Shutdown after retiring everything.
func drainAll(gens []*generation) {
	var wg sync.WaitGroup
	for _, g := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-g.done
		}()
	}
	wg.Wait()
}
