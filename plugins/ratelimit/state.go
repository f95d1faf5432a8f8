package ratelimit

import (
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// A reload that changes anything in a listener's chain builds new handler
// instances, while the old chain lives on for the connections it has. For
// the limits to hold across such a reload, the new ratelimit takes over the
// old one's state (tokens spent, connections open) when it limits the same
// listener the same way: the state is kept in the supervisor's
// chain.Shared under a stateKey, and one whose limits changed starts
// afresh.

// stateKey identifies a state within one supervisor's chain.Shared.
type stateKey struct {
	listener string
	scope    string // the nested chain it is in (ProvisionContext.Scope)
	limits   sharedLimits
}

// state is the limiter state of one listener's ratelimit.
type state struct {
	rate   *rate.Limiter // nil: no listener-wide rate
	max    int64         // 0: no listener-wide cap
	active atomic.Int64  // connections holding a slot of max
	perIP  *ipTable      // nil: no per-address limits
	// packets holds the per-address buckets of packets_per_second; nil
	// on a stream listener.
	packets *ipTable
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
