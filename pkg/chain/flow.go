package chain

// Flow is the state kept for one client address on a UDP listener, from
// its first datagram until it has been idle for the listener's
// idle_timeout. It is filled in by the UDP listener work.
type Flow struct{}
