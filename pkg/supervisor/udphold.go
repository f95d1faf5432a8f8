package supervisor

import "time"

// A flow that ends with an error (a dead upstream's ICMP port
// unreachable, a spent descriptor budget, a handler's failure) leaves its
// table entry behind for a while, as a mark that its address just failed.
// Without it, every later datagram from that address would start a flow
// of its own, fail the same way and be forgotten: a client sending
// steadily to a dead upstream would cost a socket, a goroutine, a
// connection count and a log handler's record per datagram. The first
// holdAfter failures in a row are not held, so that a client whose
// upstream died gets a new flow, on another upstream, at once; after
// that, its datagrams are dropped until holdFor has passed since the
// last failure.
const holdAfter = 3

// holdFor is a const but for tests, which lengthen it.
var holdFor = time.Second

// failed turns e, which has ended with an error, into its address's
// failure mark; u.mu is held and e is the address's entry. It reports
// false when the table holds as many marks as it may hold flows, and e
// must be forgotten at once as before.
func (u *udpSocket) failed(e *udpFlow) bool {
	if u.marks >= u.max {
		return false
	}
	e.fails = 1
	if time.Since(e.flow.Start()) < holdFor {
		// Failed young, as the flow before it may have: one more
		// failure in a row. A flow that lived longer starts the count
		// afresh.
		e.fails += e.prior
	}
	e.failedAt = time.Now()
	u.marks++
	// Kept for twice the hold, so that a client whose flows go on
	// failing gets one flow a second rather than holdAfter.
	e.timer.Reset(2 * holdFor)
	return true
}

// mark returns e when it is a failure mark, else nil; u.mu is held.
func (u *udpSocket) mark(e *udpFlow) *udpFlow {
	if e == nil || e.failedAt.IsZero() {
		return nil
	}
	return e
}

// held reports whether a datagram from the address of mark m is to be
// dropped: it failed holdAfter times in a row, the last time less than
// holdFor ago; u.mu is held.
func (m *udpFlow) held() bool {
	return m != nil && m.fails >= holdAfter && time.Since(m.failedAt) < holdFor
}

// forget removes mark m from the table; u.mu is held.
func (u *udpSocket) forget(m *udpFlow) {
	if u.flows[m.addr] == m {
		delete(u.flows, m.addr)
	}
	u.marks--
	m.timer.Stop()
}
