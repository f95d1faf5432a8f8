package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// pair is one proxied stream connection: the client and its upstream,
// copied both ways by two named loops (clientToUpstream, upstreamToClient)
// that share an idle clock.
type pair struct {
	h   *Handler
	c   *chain.Conn
	up  net.Conn
	url string

	// idle is the connection's idle_timeout (0: none). The pair is idle
	// only when nothing moved in either direction for that long, so the
	// two loops share one last-activity clock, and a watchdog timer, not
	// a deadline per direction, decides.
	idle  time.Duration
	base  time.Time
	last  atomic.Int64 // nanoseconds since base of the last progress
	watch *time.Timer  // guarded by mu

	mu      sync.Mutex
	err     error // what ended the pair early; the first one wins
	stopped bool
	// quit, on an event loop's pair, is closed by stop: the loop holds
	// its own descriptors, which closing the net.Conns does not end.
	quit chan struct{}
}

// pipe copies c and up both ways until both directions have ended (each
// end passed on as a half-close) or one fails, then closes both sides.
// Plain sockets go to an event loop (see loopPair); anything else gets two
// goroutines, one per direction.
func (h *Handler) pipe(ctx context.Context, c *chain.Conn, up net.Conn, url string) error {
	if ok, err := h.loopPair(ctx, c, up, url); ok {
		return err
	}
	p := newPair(h, c, up, url)
	p.watchIdle()
	// The second loop's goroutine is owned by pipe, which waits for it;
	// it ends at the upstream's EOF or when stop closes both sides.
	back := make(chan struct{})
	go func() {
		defer close(back)
		// A panic here would escape the supervisor's per-connection
		// recovery, which guards only the connection's own goroutine.
		defer func() {
			if v := recover(); v != nil {
				c.Logger().Error("proxy copy panicked; connection closed", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				p.stop(fmt.Errorf("proxy: copy panicked: %v", v))
			}
		}()
		p.upstreamToClient()
	}()
	p.clientToUpstream()
	<-back
	p.end()
	return p.err
}

func newPair(h *Handler, c *chain.Conn, up net.Conn, url string) *pair {
	return &pair{h: h, c: c, up: up, url: url, idle: c.IdleTimeout(), base: time.Now()}
}

// watchIdle starts the idle watchdog, when there is an idle timeout.
func (p *pair) watchIdle() {
	if p.idle > 0 {
		p.mu.Lock()
		p.watch = time.AfterFunc(p.idle, p.checkIdle)
		p.mu.Unlock()
	}
}

// end stops the watchdog once the pair is over; the error is final.
func (p *pair) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watch != nil {
		p.watch.Stop()
	}
	p.stopped = true
}

// clientToUpstream copies what the client sends; the client's EOF becomes
// a half-close towards the upstream.
func (p *pair) clientToUpstream() {
	if err := p.copy(p.up, p.c.Conn, p.c.AddIn); err != nil {
		p.stop(fmt.Errorf("proxy: client to %s: %w", p.url, err))
		return
	}
	if !chain.CloseWrite(p.up) {
		p.stop(nil)
	}
}

// upstreamToClient copies what the upstream answers; the upstream's EOF
// becomes a half-close towards the client. A client connection that
// cannot half-close (a wrapper without CloseWrite) is closed instead,
// since its peer would otherwise wait for an EOF that never comes.
func (p *pair) upstreamToClient() {
	if err := p.copy(p.c.Conn, p.up, p.c.AddOut); err != nil {
		p.stop(fmt.Errorf("proxy: %s to client: %w", p.url, err))
		return
	}
	if !chain.CloseWrite(p.c.Conn) {
		p.stop(nil)
	}
}

// stop ends the pair early: it records why (the first reason wins) and
// closes both sides, which unblocks the other loop. A nil reason closes
// without an error.
func (p *pair) stop(err error) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.err = err
	if p.quit != nil {
		close(p.quit)
	}
	p.mu.Unlock()
	_ = p.up.Close()
	_ = p.c.Conn.Close()
}

// touch records progress in either direction.
func (p *pair) touch() {
	if p.idle > 0 {
		p.last.Store(int64(time.Since(p.base)))
	}
}

// checkIdle is the watchdog: it ends the pair once nothing has moved
// either way for idle, and otherwise sleeps for the time left.
func (p *pair) checkIdle() {
	quiet := time.Since(p.base) - time.Duration(p.last.Load())
	if quiet < p.idle {
		p.mu.Lock()
		if !p.stopped {
			p.watch.Reset(p.idle - quiet)
		}
		p.mu.Unlock()
		return
	}
	p.stop(fmt.Errorf("proxy: %w", chain.ErrIdleTimeout))
}

// copy moves src to dst until src's EOF (nil) or an error, counting bytes
// with count as they go. When src and dst are the sockets themselves
// (nothing in the chain wraps the client) it takes directLoop: no buffer
// while src is quiet, a plain read/write loop for small messages, and
// splice(2) once the reads show bulk data. Otherwise it copies through a
// pooled buffer.
func (p *pair) copy(dst, src net.Conn, count func(int64)) error {
	if r, ok := directReader(dst, src); ok {
		return p.directLoop(dst, src, r, count)
	}
	p.h.paths.buffered.Add(1)
	return p.bufferedLoop(dst, src, count)
}

// pathStats counts the copy paths taken: buffered once per direction
// that copies through a wrapper, splice once per direction that switched
// to splice(2), held once per message an event loop had to keep because
// its destination was full.
type pathStats struct {
	splice, buffered, held atomic.Int64
}

// bufferedLoop copies through a pooled buffer: the path for wrapped
// connections, and for a splice that could get no pipe.
func (p *pair) bufferedLoop(dst, src net.Conn, count func(int64)) error {
	bufp := chain.GetBuffer()
	defer chain.PutBuffer(bufp)
	buf := *bufp
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			p.touch()
			w, werr := dst.Write(buf[:n])
			if w > 0 {
				count(int64(w))
				p.touch()
			}
			if werr != nil {
				return werr
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return rerr
		}
	}
}
