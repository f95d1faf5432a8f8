package relay

import (
	"fmt"
	"math"
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

// dueAt is when refresh has a deadline to push on, in sinceEpoch's
// time; never without an idle timeout.
func (d *deadline) dueAt() int64 {
	if d.idle <= 0 {
		return math.MaxInt64
	}
	return int64(d.at.Sub(epoch) - d.idle)
}

// epoch starts a monotonic clock in nanoseconds that fits an int64 field.
var epoch = time.Now()

// sinceEpoch reads that clock: one monotonic clock reading, where
// time.Now takes the wall clock too.
func sinceEpoch() int64 { return int64(time.Since(epoch)) }

// unreader reports whether bytes wait unread in a relay's sockets.
type unreader interface{ unread() bool }

// watchdog enforces the idle timeout of a relay: it is idle only when
// nothing moved in either direction for that long, so both directions
// share one last-activity clock, and a timer, not a deadline per
// direction, decides. A relay on the event loop has no deadlines at all.
//
// Quiet is not always idle: when sluice itself could not run (the
// process stopped, the machine paused or starved of CPU), the timer fires
// as soon as it runs again, before the bytes the peers sent meanwhile
// were read. So a watchdog whose time is up first asks its queues whether
// bytes wait in a socket and, once per quiet spell, gives the relay a
// quarter of the timeout more to read them. Only once: bytes that stay
// unread are those of a direction whose destination takes nothing, and
// that relay is as stuck as an idle one.
//
// The queues are asked while a relay on goroutines may be reading them:
// on resume its reader and this timer run at once, and the reader may
// take the bytes between the look at the clock and the question. So its
// readers touch before they read a socket, not only once the bytes are
// written on, and a watchdog that found the queues empty looks at the
// clock again: if it moved, the bytes were taken, which is progress. (A
// relay on an event loop has the loop decide; see check.)
type watchdog struct {
	idle   time.Duration
	base   time.Time
	last   atomic.Int64 // nanoseconds since base of the last progress
	expire func()
	queues unreader // set before start; nil when it cannot be told
	// graced is the last progress (a value of last) whose quiet spell
	// had its grace; only due, one call at a time, touches it.
	graced int64

	mu      sync.Mutex
	timer   *time.Timer
	stopped bool

	// While young, the watchdog waits in a list of youngDogs for its
	// timer (see armDelay): its links and its list, which guards them.
	prev, next *watchdog
	list       *dogList
	young      atomic.Bool // set by start, cleared by whoever unlinks it
}

// start arms the watchdog, when there is an idle timeout; expire runs
// once the relay has been quiet for idle. A timeout long enough to wait
// for armDelay first gets its timer from the sweeper, if the relay lives
// that long (see armDelay).
func (w *watchdog) start(idle time.Duration, expire func()) {
	w.idle, w.base, w.expire = idle, time.Now(), expire
	switch {
	case idle <= 0:
	case idle < 4*armDelay:
		w.arm(idle)
	default:
		youngDogs.add(w)
	}
}

// arm starts the timer to check after d, unless the watchdog was stopped.
func (w *watchdog) arm(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.timer = time.AfterFunc(d, w.check)
	}
}

// touch records progress in either direction. A nil watchdog (Copy's
// flows) records nothing.
func (w *watchdog) touch() {
	if w != nil && w.idle > 0 {
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
	if w.young.Load() {
		w.list.remove(w)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.stopped = true
}

// check ends the relay once nothing has moved for idle, and otherwise
// sleeps for the time left. A relay on an event loop has its loop take
// the decision (expire hands it over): only the loop knows that what it
// read in a turn held up by a pause is recorded as moved on resume.
func (w *watchdog) check() {
	if w.due() {
		w.expire()
	}
}

// due reports whether the relay has been idle for its timeout; when it
// has not, it sets the timer for the next look. One caller at a time: the
// timer, or the loop it handed the look to.
func (w *watchdog) due() bool {
	last := w.last.Load()
	quiet := time.Since(w.base) - time.Duration(last)
	switch {
	case quiet < w.idle:
		w.rearm(w.idle - quiet)
		return false
	case w.queues != nil && w.graced != last+1 && w.queues.unread():
		// +1: the zero value must not stand for "progress at base".
		w.graced = last + 1
		w.rearm(w.idle / 4)
		return false
	case w.queues != nil && w.last.Load() != last:
		// Taken while we asked: a new quiet spell, if one at all.
		w.rearm(w.idle)
		return false
	}
	return true
}

// rearm runs check again after d, unless the watchdog was stopped.
func (w *watchdog) rearm(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.timer.Reset(d)
	}
}

// timeoutAsIdle turns a deadline expiry, which only the idle timeout
// sets, into chain.ErrIdleTimeout.
func timeoutAsIdle(err error) error {
	if chain.IsTimeout(err) {
		return chain.ErrIdleTimeout
	}
	return err
}
