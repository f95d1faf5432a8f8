package relay

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// deadline enforces the idle timeout of a single copy (Copy) with the
// connections' own deadlines, kept at least idle ahead. It is set a
// quarter beyond the timeout and pushed forward only once less than the
// timeout remains, so a busy connection does not pay for a timer update
// on every read: a silent copy ends between 1× and 1.25× the timeout
// after its last byte, never before.
type deadline struct {
	conns [2]net.Conn // src, and dst when it is another connection
	idle  time.Duration
	at    time.Time
}

func (d *deadline) refresh() error {
	if d.idle <= 0 {
		return nil
	}
	now := time.Now()
	if d.at.Sub(now) >= d.idle {
		return nil
	}
	d.at = now.Add(d.idle + d.idle/4)
	for _, c := range d.conns {
		if c == nil {
			continue
		}
		if err := c.SetDeadline(d.at); err != nil {
			return fmt.Errorf("set deadline: %w", err)
		}
	}
	return nil
}

// watchdog enforces the idle timeout of a relay: it is idle only when
// nothing moved in either direction for that long, so both directions
// share one last-activity clock, and a timer, not a deadline per
// direction, decides. A relay on the event loop has no deadlines at all.
type watchdog struct {
	idle   time.Duration
	base   time.Time
	last   atomic.Int64 // nanoseconds since base of the last progress
	expire func()

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// start arms the watchdog, when there is an idle timeout; expire runs
// once the relay has been quiet for idle.
func (w *watchdog) start(idle time.Duration, expire func()) {
	w.idle, w.base, w.expire = idle, time.Now(), expire
	if idle > 0 {
		w.mu.Lock()
		w.timer = time.AfterFunc(idle, w.check)
		w.mu.Unlock()
	}
}

// touch records progress in either direction.
func (w *watchdog) touch() {
	if w.idle > 0 {
		w.last.Store(int64(time.Since(w.base)))
	}
}

// touchAt records progress at now: an event loop reads the clock once
// per turn, not per call.
func (w *watchdog) touchAt(now time.Time) {
	if w.idle > 0 {
		w.last.Store(int64(now.Sub(w.base)))
	}
}

// stop disarms the watchdog for good.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.stopped = true
}

// check ends the relay once nothing has moved for idle, and otherwise
// sleeps for the time left.
func (w *watchdog) check() {
	quiet := time.Since(w.base) - time.Duration(w.last.Load())
	if quiet < w.idle {
		w.mu.Lock()
		if !w.stopped {
			w.timer.Reset(w.idle - quiet)
		}
		w.mu.Unlock()
		return
	}
	w.expire()
}

// timeoutAsIdle turns a deadline expiry, which only the idle timeout
// sets, into chain.ErrIdleTimeout.
func timeoutAsIdle(err error) error {
	if chain.IsTimeout(err) {
		return chain.ErrIdleTimeout
	}
	return err
}
