package relay

import (
	"net"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/peek"
)

// A handler that decides on the client's first bytes and cannot leave them
// in the socket (proxy_protocol takes its header out with the bytes after
// it; route on a wrapped connection) hands them on in a peek.Replay. The
// relay's fast paths, the event loop and splice, need the bare socket: the
// functions here send the replayed bytes on first and take the Replay off
// c.Conn, so that a connection that began with a decision is relayed as
// one that did not.

// TakeWaiting reads into p the client's bytes that are there already,
// without waiting: those c.Conn replays first, then, when it replays none,
// what waits in its socket (ReadWaiting). A Replay it empties is taken off
// c.Conn. The bytes are the caller's to count and to send on: the proxy
// sends them in its PROXY header's write.
func TakeWaiting(c *chain.Conn, p []byte) (int, error) {
	unwrapReplays(c)
	n := 0
	for n < len(p) {
		r, ok := c.Conn.(*peek.Replay)
		if !ok {
			break
		}
		m, _ := r.Read(p[n:]) // from its buffer: unwrapReplays left none empty
		n += m
		unwrapReplays(c)
	}
	if n > 0 {
		return n, nil
	}
	m, _, err := ReadWaiting(c.Conn, p)
	return m, err
}

// unwrapReplays takes off c.Conn every Replay that has nothing left to
// replay: it is the connection under it from then on.
func unwrapReplays(c *chain.Conn) {
	for {
		r, ok := c.Conn.(*peek.Replay)
		if !ok || r.Buffered() > 0 {
			return
		}
		c.Conn = r.Unwrap()
	}
}

// sendReplayed writes the bytes c.Conn replays to dst, counted as dir
// says, and takes the emptied Replays off c.Conn; dst nil is c.Conn
// itself (echo). The writes never wait (WriteNow): a fresh connection's
// socket buffer takes a handler's first bytes at once, and what it does
// not take stays in the Replay for the buffered copy, which waits under
// the idle timeout.
func sendReplayed(c *chain.Conn, dst net.Conn, dir Dir) error {
	unwrapReplays(c)
	for {
		r, ok := c.Conn.(*peek.Replay)
		if !ok {
			return nil
		}
		to := dst
		if to == nil {
			to = socketUnder(r)
		}
		if !isSocket(to) {
			return nil
		}
		n, err := WriteNow(to, r.Pending())
		if n > 0 {
			r.Discard(n)
			countInto(c, dir, n)
		}
		if err != nil {
			return err
		}
		if r.Buffered() > 0 {
			return nil // the socket buffer is full: the buffered copy goes on
		}
		unwrapReplays(c)
	}
}

// socketUnder is the connection under the Replays of r.
func socketUnder(r *peek.Replay) net.Conn {
	c := r.Unwrap()
	for {
		w, ok := c.(*peek.Replay)
		if !ok {
			return c
		}
		c = w.Unwrap()
	}
}
