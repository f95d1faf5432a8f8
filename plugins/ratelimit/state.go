package ratelimit

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sluice-dev/sluice/pkg/metrics"
)

// A reload that changes anything in a listener's chain builds new handler
// instances, while the old chain lives on for the connections it has. For
// the limits to hold across such a reload, the new ratelimit takes over the
// old one's state (tokens spent, connections open) when it limits the same
// listener the same way. The store holds each state with a count of the
// handlers using it: Provision takes a reference, Close gives it back, and
// the last Close forgets the state. Since a new chain is provisioned before
// the old one is closed, an unchanged ratelimit never starts afresh; one
// whose limits changed does.

// stateKey identifies a state. owner is the supervisor's metrics, which are
// per supervisor, so that two supervisors in one process (tests) never
// share limiter state.
type stateKey struct {
	owner    *metrics.Metrics
	listener string
	limits   sharedLimits
}

// state is the limiter state of one listener's ratelimit.
type state struct {
	refs int // guarded by storeMu

	rate   *rate.Limiter // nil: no listener-wide rate
	max    int64         // 0: no listener-wide cap
	active atomic.Int64  // connections holding a slot of max
	perIP  *ipTable      // nil: no per-address limits
	// packets holds the per-address buckets of packets_per_second; nil
	// on a stream listener.
	packets *ipTable
}

var (
	storeMu sync.Mutex
	store   = map[stateKey]*state{}
)

// acquire returns the state for k, shared with the handlers already using
// it or new.
func acquire(k stateKey) *state {
	storeMu.Lock()
	defer storeMu.Unlock()
	s, ok := store[k]
	if !ok {
		s = newState(k.limits)
		store[k] = s
	}
	s.refs++
	return s
}

// release gives back a reference taken by acquire. Connections still
// holding tickets may keep using s; it is only no longer shared.
func release(k stateKey, s *state) {
	storeMu.Lock()
	defer storeMu.Unlock()
	s.refs--
	if s.refs == 0 && store[k] == s {
		delete(store, k)
	}
}

func newState(l sharedLimits) *state {
	s := &state{max: l.max}
	if l.rate > 0 {
		s.rate = rate.NewLimiter(l.rate, l.burst)
	}
	if l.perIP {
		s.perIP = newIPTable(l.ipRate, l.ipBurst, l.ipMax, l.ipEntries)
	}
	if l.pktRate > 0 {
		s.packets = newIPTable(l.pktRate, l.pktBurst, 0, DefaultMaxEntries)
	}
	return s
}

// ticket is what an admitted connection holds and gives back with done.
type ticket struct {
	slot bool     // holds one of max
	ip   *ipEntry // holds a place in its address's entry
}

// admit decides on a new connection from src. Caps are checked before
// rates, so that an attempt refused for want of a slot spends no token;
// and an address's own limits before the listener's rate, so that one
// address hammering the listener is turned away before it spends the
// tokens every client shares.
func (s *state) admit(src netip.Addr, now time.Time) (ticket, reason) {
	var t ticket
	if s.max > 0 {
		if !s.takeSlot() {
			return ticket{}, reasonMax
		}
		t.slot = true
	}
	if s.perIP != nil {
		e, r := s.perIP.admit(src, now)
		if r != none {
			s.done(t, now)
			return ticket{}, r
		}
		t.ip = e
	}
	if s.rate != nil && !s.rate.AllowN(now, 1) {
		s.done(t, now)
		return ticket{}, reasonRate
	}
	return t, none
}

// takeSlot takes one of max unless all are taken. A compare-and-swap loop
// rather than add-then-undo, so that a connection racing with one that is
// about to be refused is never refused too.
func (s *state) takeSlot() bool {
	for {
		n := s.active.Load()
		if n >= s.max {
			return false
		}
		if s.active.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// done gives back what t holds; the slot is free for the next connection
// at once.
func (s *state) done(t ticket, now time.Time) {
	if t.slot {
		s.active.Add(-1)
	}
	if t.ip != nil {
		s.perIP.release(t.ip, now)
	}
}

// reason is why a connection was refused or a datagram dropped; none when
// it was not.
type reason int

const (
	none reason = iota
	reasonRate
	reasonMax
	reasonIPRate
	reasonIPMax
	reasonIPFull
	reasonPacketRate // a datagram over its address's packets_per_second
	numReasons
)

// reasonNames are the values of the reason label and log key.
var reasonNames = [numReasons]string{
	reasonRate:       "rate",
	reasonMax:        "max",
	reasonIPRate:     "per_ip_rate",
	reasonIPMax:      "per_ip_max",
	reasonIPFull:     "per_ip_full",
	reasonPacketRate: "packet_rate",
}

func (r reason) String() string { return reasonNames[r] }

// applies reports whether limits l can refuse for reason r.
func (l sharedLimits) applies(r reason) bool {
	switch r {
	case reasonRate:
		return l.rate > 0
	case reasonMax:
		return l.max > 0
	case reasonIPRate:
		return l.ipRate > 0
	case reasonIPMax:
		return l.ipMax > 0
	case reasonIPFull:
		return l.perIP
	case reasonPacketRate:
		return l.pktRate > 0
	}
	return false
}
