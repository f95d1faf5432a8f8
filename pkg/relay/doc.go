// Package relay is sluice's one data path: everything that moves the bytes
// of a connection lives here, so that every terminal handler gets the same
// costs and the same guarantees.
//
// It offers two calls. Copy moves one direction (src to dst, then a
// half-close of dst): echo is Copy of a connection to itself. Relay moves
// both directions between a client and an upstream, each end's EOF passed
// on as a half-close (the last one onto a socket by the close that
// follows, which sends the same FIN). Both count the bytes into the
// chain.Conn and enforce its listener's idle_timeout
// (chain.ErrIdleTimeout).
//
// Both take any net.Conn. A connection a middleware wrapped (TLS, PROXY
// protocol, a peek-and-replay) is copied by a plain loop through a pooled
// buffer. When both ends are the sockets themselves (*net.TCPConn,
// *net.UnixConn), the fast paths are this package's business: a quiet
// direction waits for readability without holding a buffer, small
// messages take one read and one write, and once the reads show bulk data
// the direction switches to splice(2) on Linux, whose pipes also go back
// to a pool whenever the source runs dry. On Linux a direction between
// TCP sockets (an echo's one socket, or the two of a pair on its
// goroutines) reads, passes on and parks inside one wait from its second
// message on, with TCP_INQ saying when the queue is empty, so that it
// never reads only to find nothing (pass_linux.go). On Linux a Relay pair that
// keeps exchanging small messages moves from its two goroutines to an
// event loop (loop_linux.go), between two messages (hop.go).
package relay
