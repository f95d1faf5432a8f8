package relay

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// A hop moves a pair from its two goroutines to an event loop. It happens
// only between two messages: the direction that counts the hopAfter-th
// message asks for it and stops; the other one is woken from its wait by
// a read deadline in the past and stops too, or stops after the message
// it is writing. Neither holds a byte then, so the loop takes the sockets
// as they are. A direction that switched to splice, or ended, keeps the
// pair on its goroutines: the loop starts every pair with both flows open.

// errHop is what a direction returns when it stopped for a hop.
var errHop = errors.New("relay: stopped to move to an event loop")

// A hopper's states.
const (
	hopCounting int32 = iota
	hopAsked
	hopNever
)

type hopper struct {
	after int64
	n     atomic.Int64 // messages so far, both directions
	state atomic.Int32
}

// aLongTimeAgo is a read deadline that has passed: it wakes a wait at once.
var aLongTimeAgo = time.Unix(1, 0)

// tick counts a message dir has written and reports whether dir must stop
// for a hop, which it asks for once the pair reached hopAfter messages.
func (p *pair) tick(dir Dir) bool {
	if p == nil || p.hop == nil {
		return false
	}
	h := p.hop
	switch h.state.Load() {
	case hopAsked:
		return true
	case hopNever:
		return false
	}
	if h.n.Add(1) < h.after {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case h.state.Load() != hopCounting:
		return h.state.Load() == hopAsked
	case p.stopped || p.done[0] || p.done[1]:
		h.state.Store(hopNever)
		return false
	}
	h.state.Store(hopAsked)
	// Wake the other direction, parked in its wait for the socket it
	// reads from.
	other := p.up
	if dir == Out {
		other = p.c.Conn
	}
	_ = other.SetReadDeadline(aLongTimeAgo)
	return true
}

// hopWoke reports whether err is the wake-up of a direction's wait for a
// hop, rather than a failure.
func (p *pair) hopWoke(err error) bool {
	return p != nil && p.hop != nil && p.hop.state.Load() == hopAsked && chain.IsTimeout(err)
}

// bulk reports whether dir may switch to splice: not once a hop is
// asked for (it stops instead), and a pair that splices never hops.
func (p *pair) bulk() bool {
	if p == nil || p.hop == nil {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hop.state.Load() == hopAsked {
		return false
	}
	p.hop.state.Store(hopNever)
	return true
}
