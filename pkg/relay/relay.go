package relay

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Relay copies c and up both ways until both directions have ended (each
// end passed on as a half-close) or one fails, which closes both. The
// last end, onto a socket, may be left to the close of both sockets that
// must follow Relay's return: the caller closes up, the supervisor c.
// Bytes from the client count as c's bytes in, bytes to it as its bytes
// out.
// It ends with chain.ErrIdleTimeout once nothing moved either way for c's
// idle timeout. A forced drain (ctx cancelled, or the supervisor closing
// the client's socket) ends it with an error that wraps net.ErrClosed.
// Errors name their direction ("client to upstream: ...").
//
// Bytes a handler read from the client to decide and replays
// (peek.Replay) go to up first, and the relay works on the socket under
// them (sendReplayed).
//
// Each direction starts as a goroutine. When both ends are the sockets
// themselves, a pair that keeps exchanging small messages moves to an
// event loop (Linux) once hopAfter of them went through: a loop saves on
// every message but costs a few system calls to join, which a connection
// that lives for one request and its answer never earns back.
func Relay(ctx context.Context, c *chain.Conn, up net.Conn, st *Stats) error {
	if err := sendReplayed(c, up, In); err != nil {
		return fmt.Errorf("client to upstream: write: %w", err)
	}
	hop := loopable(c.Conn, up)
	after := hopAfter.Load()
	if hop && after == 0 {
		if ok, err := loopRelay(ctx, c, up, st); ok {
			return err
		}
		hop = false
	}
	var done [2]bool // by dirIndex: the direction ended and was passed on
	for {
		p := newPair(c, up, st)
		if hop {
			p.hopper.after = after
			p.hop = &p.hopper
		}
		p.done = done
		p.run()
		done = p.done
		if p.closed || done[0] && done[1] {
			return p.err
		}
		// A hop stopped the directions still running, between two
		// messages, every byte read also written: the loop takes the
		// sockets as they are, unless one direction ended meanwhile.
		if !done[0] && !done[1] {
			if ok, err := loopRelay(ctx, c, up, st); ok {
				st.hopped()
				return err
			}
		}
		// The goroutines go on where they stopped, for good.
		_ = c.Conn.SetReadDeadline(time.Time{})
		_ = up.SetReadDeadline(time.Time{})
		hop = false
	}
}

// hopAfter is the number of small messages, both directions together,
// after which a pair moves to an event loop; 0 puts it there at once.
// Tests set it; nothing else does.
var hopAfter atomic.Int64

func init() { hopAfter.Store(8) }

// loopable reports whether an event loop may take the pair: both ends
// the sockets themselves, and the loop not turned off.
func loopable(c, up net.Conn) bool {
	return loopAvailable && !noLoop.Load() && isSocket(c) && isSocket(up)
}

// run copies the directions not yet done, In on the calling goroutine and
// Out on one it owns and waits for, until both ended, one failed, or both
// stopped for a hop.
func (p *pair) run() {
	p.dog.queues = p
	p.dog.start(p.c.IdleTimeout(), p.idleExpired)
	defer p.end()
	if p.done[dirIndex(Out)] {
		p.direction(In)
		return
	}
	if p.done[dirIndex(In)] {
		p.direction(Out)
		return
	}
	// The second direction's goroutine is owned by run, which waits for
	// it; it ends at the upstream's EOF, at a hop, or when stop closes
	// both sides.
	p.out.Add(1)
	p.c.Go(func() {
		defer p.out.Done()
		// A panic here would escape the supervisor's per-connection
		// recovery, which guards only the connection's own goroutine.
		defer func() {
			if v := recover(); v != nil {
				p.c.Logger().Error("relay copy panicked; connection closed", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				p.stop(fmt.Errorf("copy panicked: %v", v))
			}
		}()
		p.direction(Out)
	})
	p.direction(In)
	p.out.Wait()
}

func dirIndex(d Dir) int {
	if d == In {
		return 0
	}
	return 1
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
	closed  bool // by stop: both sides closed
	// quit, on an event loop's pair, is closed by stop: the loop holds
	// its own descriptors, which closing the net.Conns does not end.
	quit chan struct{}
	// done says which directions ended and were passed on (by
	// dirIndex); hop, when set, moves the pair to an event loop.
	done [2]bool
	hop  *hopper
	// hopper is hop's, in the same allocation; out waits for the
	// direction run's own goroutine.
	hopper hopper
	out    sync.WaitGroup
}

func newPair(c *chain.Conn, up net.Conn, st *Stats) *pair { return &pair{c: c, up: up, st: st} }

// direction runs one direction on its own goroutine: In is the client to
// the upstream, Out back. Its source's EOF becomes a half-close towards
// its destination; a destination that cannot half-close (a wrapper
// without CloseWrite) is closed instead, since its peer would otherwise
// wait for an EOF that never comes. A direction stopped for a hop
// returns with nothing held.
func (p *pair) direction(dir Dir) {
	f := flow{c: p.c, dir: dir, st: p.st, dog: &p.dog, p: p}
	name := "client to upstream"
	if dir == In {
		f.dst, f.src = p.up, p.c.Conn
	} else {
		f.dst, f.src = p.c.Conn, p.up
		name = "upstream to client"
	}
	err := f.run()
	if err == errHop {
		return
	}
	if err != nil {
		p.stop(fmt.Errorf("%s: %w", name, err))
		return
	}
	p.mu.Lock()
	p.done[dirIndex(dir)] = true
	last := p.done[0] && p.done[1]
	p.mu.Unlock()
	if last && isSocket(f.dst) {
		// The other side's EOF is in, so the close that follows Relay
		// sends this FIN, as shutdown would, with nothing unread to turn
		// it into a reset: one system call fewer per connection.
		return
	}
	if !closeWrite(f.dst) {
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
	p.stopped, p.closed = true, true
	p.err = err
	if p.quit != nil {
		close(p.quit)
	}
	p.mu.Unlock()
	_ = p.up.Close()
	_ = p.c.Conn.Close()
}

func (p *pair) idleExpired() { p.stop(chain.ErrIdleTimeout) }

// unread reports whether bytes wait in either socket (see watchdog).
// The client's side is the accepted socket, whatever wraps it.
func (p *pair) unread() bool { return connUnread(p.c.Raw()) || connUnread(p.up) }

// end disarms the watchdog once the pair is over; the error is final.
func (p *pair) end() {
	p.dog.stop()
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
}
