package relay

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Relay copies c and up both ways until both directions have ended (each
// end passed on as a half-close) or one fails, which closes both. Bytes
// from the client count as c's bytes in, bytes to it as its bytes out.
// It ends with chain.ErrIdleTimeout once nothing moved either way for c's
// idle timeout. A forced drain (ctx cancelled, or the supervisor closing
// the client's socket) ends it with an error that wraps net.ErrClosed.
// Errors name their direction ("client to upstream: ...").
//
// When both ends are the sockets themselves, the pair may run on an event
// loop (Linux); otherwise each direction is a goroutine.
func Relay(ctx context.Context, c *chain.Conn, up net.Conn, st *Stats) error {
	if ok, err := loopRelay(ctx, c, up, st); ok {
		return err
	}
	p := newPair(c, up, st)
	p.dog.start(c.IdleTimeout(), p.idleExpired)
	// The second direction's goroutine is owned by Relay, which waits for
	// it; it ends at the upstream's EOF or when stop closes both sides.
	back := make(chan struct{})
	go func() {
		defer close(back)
		// A panic here would escape the supervisor's per-connection
		// recovery, which guards only the connection's own goroutine.
		defer func() {
			if v := recover(); v != nil {
				c.Logger().Error("relay copy panicked; connection closed", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				p.stop(fmt.Errorf("copy panicked: %v", v))
			}
		}()
		p.direction(Out)
	}()
	p.direction(In)
	<-back
	p.end()
	return p.err
}

// noLoop turns the event loop off (SLUICE_RELAY_EVENT_LOOP=off), for the
// benchmark that measures what the loop saves, and for tests; nothing
// else sets it.
var noLoop atomic.Bool

func init() { noLoop.Store(os.Getenv("SLUICE_RELAY_EVENT_LOOP") == "off") }

// pair is one relayed connection: the client and its upstream, copied
// both ways, sharing an idle watchdog.
type pair struct {
	c   *chain.Conn
	up  net.Conn
	st  *Stats
	dog watchdog

	mu      sync.Mutex
	err     error // what ended the pair early; the first one wins
	stopped bool
	// quit, on an event loop's pair, is closed by stop: the loop holds
	// its own descriptors, which closing the net.Conns does not end.
	quit chan struct{}
}

func newPair(c *chain.Conn, up net.Conn, st *Stats) *pair { return &pair{c: c, up: up, st: st} }

// direction runs one direction on its own goroutine: In is the client to
// the upstream, Out back. Its source's EOF becomes a half-close towards
// its destination; a destination that cannot half-close (a wrapper
// without CloseWrite) is closed instead, since its peer would otherwise
// wait for an EOF that never comes.
func (p *pair) direction(dir Dir) {
	f := flow{c: p.c, dir: dir, st: p.st, dog: &p.dog}
	name := "client to upstream"
	if dir == In {
		f.dst, f.src = p.up, p.c.Conn
	} else {
		f.dst, f.src = p.c.Conn, p.up
		name = "upstream to client"
	}
	if err := f.run(); err != nil {
		p.stop(fmt.Errorf("%s: %w", name, err))
		return
	}
	if !chain.CloseWrite(f.dst) {
		p.stop(nil)
	}
}

// stop ends the pair early: it records why (the first reason wins) and
// closes both sides, which unblocks the other direction. A nil reason
// closes without an error.
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

func (p *pair) idleExpired() { p.stop(chain.ErrIdleTimeout) }

// end disarms the watchdog once the pair is over; the error is final.
func (p *pair) end() {
	p.dog.stop()
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}
