package listener

import (
	"errors"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/fdbudget"
)

// Backoff bounds for accept errors: the first retry waits MinBackoff, each
// further one twice as long up to MaxBackoff, and a success resets it.
// Running out of file descriptors must slow the loop down, not spin it.
const (
	MinBackoff = 5 * time.Millisecond
	MaxBackoff = time.Second
)

// descriptorsPerConn is what Accept takes from the descriptor budget for
// each connection: the client's socket and, for a proxy, the upstream's.
const descriptorsPerConn = 2

// pausedPoll is how often a loop paused for descriptors looks again.
const pausedPoll = 20 * time.Millisecond

// pausedWarnEvery bounds the "accepts paused" warnings of one loop.
const pausedWarnEvery = 10 * time.Second

// Accept runs ln's accept loop until ln is closed, handing each connection
// to handle (which must not block: it starts the connection's goroutine).
// It returns nil when ln was closed and never returns on other errors.
//
// While the process is short of descriptors (see fdbudget: fewer than the
// reserve free), the loop stops taking connections off the kernel's queue
// and looks again every pausedPoll, so that the admin endpoint and
// reloads always find a descriptor.
func Accept(ln net.Listener, log hclog.Logger, handle func(net.Conn)) error {
	budget := fdbudget.Default()
	var delay time.Duration
	var lastWarn time.Time
	for {
		if !budget.Take(descriptorsPerConn) {
			if time.Since(lastWarn) >= pausedWarnEvery {
				lastWarn = time.Now()
				log.Warn("file descriptors low; accepts paused", "free", budget.Free(), "reserve", budget.Reserve())
			}
			if closed(ln, handle) {
				return nil
			}
			time.Sleep(pausedPoll)
			continue
		}
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			delay = nextBackoff(delay)
			log.Warn("accept failed; retrying", "error", err, "backoff", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		handle(c)
	}
}

// closed reports whether ln has been closed, without waiting for a
// connection: an accept with a deadline in the past fails at once, with
// net.ErrClosed once the socket is closed. A listener without deadlines
// is taken to be open.
func closed(ln net.Listener, handle func(net.Conn)) bool {
	d, ok := ln.(interface{ SetDeadline(time.Time) error })
	if !ok {
		return false
	}
	if err := d.SetDeadline(time.Unix(1, 0)); err != nil {
		return errors.Is(err, net.ErrClosed)
	}
	c, err := ln.Accept()
	_ = d.SetDeadline(time.Time{})
	if c != nil {
		handle(c) // not expected with the deadline past; never drop one
	}
	return errors.Is(err, net.ErrClosed)
}

func nextBackoff(d time.Duration) time.Duration {
	if d == 0 {
		return MinBackoff
	}
	d *= 2
	if d > MaxBackoff {
		d = MaxBackoff
	}
	return d
}
