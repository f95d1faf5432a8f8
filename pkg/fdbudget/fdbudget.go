// Package fdbudget apportions the process's file descriptors
// (RLIMIT_NOFILE) so that no one kind of traffic can take them all:
//
//   - a reserve (Reserve) is kept for the admin endpoint, reloads and the
//     log: the data listeners stop accepting while fewer descriptors than
//     that are free, and leave new connections in the kernel's queue;
//   - UDP flows' upstream sockets together may hold at most UDPBudget
//     descriptors, whatever the number of UDP listeners; a flow over it is
//     refused with ErrShortage.
//
// Counting open descriptors means reading /proc/self/fd, which costs in
// proportion to their number, so Take keeps an estimate instead: the last
// count plus every descriptor handed out since (closes are not
// subtracted, so the estimate only errs high), and counts again, at most
// every recountEvery, only when the estimate says the reserve is near.
// The process's budget (Default) reads RLIMIT_NOFILE again with each
// count, so that a limit an operator changes on the running process
// (prlimit) takes effect, the reserve and the UDP share with it.
package fdbudget

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrShortage is a descriptor shortage of sluice's own: the UDP budget is
// spent, or the process is at or near its descriptor limit. It says
// nothing about an upstream.
var ErrShortage = errors.New("file descriptors short")

// IsShortage reports whether err is a descriptor shortage: ErrShortage,
// or the kernel's EMFILE (process limit) or ENFILE (system limit).
func IsShortage(err error) bool {
	return errors.Is(err, ErrShortage) || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// recountEvery bounds how often Take reads /proc/self/fd.
const recountEvery = 10 * time.Millisecond

// Budget is one process's descriptor budget.
type Budget struct {
	// limit and reserve are guarded by mu; limitFn, when set, reads the
	// limit again at each count.
	limit   int
	reserve int
	limitFn func() int
	udpMax  atomic.Int64
	udp     atomic.Int64

	// since counts descriptors handed out since the last count.
	since atomic.Int64
	// mu guards counted and countedAt.
	mu        sync.Mutex
	counted   int
	countedAt time.Time
	count     func() (int, error)
}

// New returns the budget of a process whose descriptor limit is limit.
func New(limit int) *Budget {
	b := &Budget{count: countOpen}
	b.setLimit(limit)
	if c, err := b.count(); err == nil {
		b.counted, b.countedAt = c, time.Now()
	}
	return b
}

// setLimit sets the limit and what follows from it; b.mu is held, or b
// is not shared yet.
func (b *Budget) setLimit(limit int) {
	b.limit, b.reserve = limit, ReserveFor(limit)
	b.udpMax.Store(int64(UDPBudgetFor(limit)))
}

// ReserveFor is the reserve of a process with the given limit: an eighth
// of it, at least 16 and at most 256.
func ReserveFor(limit int) int { return min(max(limit/8, 16), 256) }

// UDPBudgetFor is the UDP flows' share of the given limit: a quarter.
func UDPBudgetFor(limit int) int { return limit / 4 }

var def = sync.OnceValue(func() *Budget {
	b := New(currentLimit())
	b.limitFn = currentLimit
	return b
})

// Default is the process's budget, from RLIMIT_NOFILE's soft limit (Go
// raises it to the hard limit at start), read again with each count.
func Default() *Budget { return def() }

// Limit is the descriptor limit the budget counts with now.
func (b *Budget) Limit() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit
}

// Reserve is how many descriptors the data listeners leave free.
func (b *Budget) Reserve() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reserve
}

// UDPBudget is how many upstream sockets UDP flows may hold together.
func (b *Budget) UDPBudget() int { return int(b.udpMax.Load()) }

// Take reports whether n more descriptors may be opened for data traffic
// without eating into the reserve, and if so counts them as taken.
func (b *Budget) Take(n int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Well clear of the reserve: no count. Within a reserve's width of
	// it, count often, which also catches descriptors opened elsewhere
	// (listeners, the admin endpoint) that Take never saw.
	if b.counted+int(b.since.Load())+n <= b.limit-2*b.reserve {
		b.since.Add(int64(n))
		return true
	}
	if time.Since(b.countedAt) >= recountEvery {
		if b.limitFn != nil {
			b.setLimit(b.limitFn())
		}
		if c, err := b.count(); err == nil {
			b.counted, b.countedAt = c, time.Now()
			b.since.Store(0)
		}
	}
	if b.counted+int(b.since.Load())+n <= b.limit-b.reserve {
		b.since.Add(int64(n))
		return true
	}
	return false
}

// Free is an estimate of the descriptors free now, for log lines.
func (b *Budget) Free() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit - b.counted - int(b.since.Load())
}

// TakeUDP takes one descriptor for a UDP flow's upstream socket: within
// the UDP budget and outside the reserve, or ErrShortage. The caller
// gives it back with ReleaseUDP when the socket is closed.
func (b *Budget) TakeUDP() error {
	if b.udp.Add(1) > b.udpMax.Load() {
		b.udp.Add(-1)
		return ErrShortage
	}
	if !b.Take(1) {
		b.udp.Add(-1)
		return ErrShortage
	}
	return nil
}

// ReleaseUDP gives back a descriptor TakeUDP took.
func (b *Budget) ReleaseUDP() { b.udp.Add(-1) }

// UDPInUse is how many descriptors UDP flows hold now.
func (b *Budget) UDPInUse() int { return int(b.udp.Load()) }

// countOpen counts the process's open descriptors.
func countOpen() (int, error) {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, err
	}
	return len(names) - 1, nil // the directory's own descriptor
}
