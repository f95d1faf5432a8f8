// Package peek looks at the first bytes of a stream connection for a
// handler that must decide on them (a PROXY header, a TLS ClientHello, an
// HTTP Host), so that the handler after it still reads them as the client
// sent them.
//
// Read takes them: on a socket with one receive per wait, on a connection
// a middleware wrapped (TLS, a payload logger) through its Read. The
// caller hands them on first in a Replay, which pkg/relay writes on before
// it works on the socket under it, so splice and the event loop still
// apply; proxy_protocol and route do this. (A MSG_PEEK look that left the
// bytes in the kernel cost a receive more per connection: the next
// handler's read of the same bytes.)
package peek

import (
	"errors"
	"net"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Look is called with every byte seen so far, each time more arrived. It
// reports whether they are enough (done), and when they are not, how many
// it wants at least (want): a buffer smaller than want grows to it. When
// the buffer is full and want does not ask for more, the look ends with
// what was seen.
type Look func(seen []byte) (done bool, want int)

// maxLooks is how many looks the first bytes get as they come, one each
// time more arrived. Past it, a look comes only once the bytes seen have
// doubled since the last one, or fill the buffer, and once more when the
// wait ends (deadline, EOF): a client that sends its first bytes a few at
// a time would otherwise make every segment cost a parse of all of them,
// quadratic in the bytes. A real client's first bytes come in a few
// segments.
const maxLooks = 32

// pacer counts the looks of one wait.
type pacer struct {
	looks  int
	looked int // bytes seen by the last look
}

// due reports whether n bytes seen, of a buffer of size, deserve a look.
func (p *pacer) due(n, size int) bool {
	return p.looks < maxLooks || n >= 2*p.looked || n == size
}

// look calls look with seen, counting it.
func (p *pacer) look(look Look, seen []byte) (bool, int) {
	p.looks++
	p.looked = len(seen)
	return look(seen)
}

// Read reads conn into buf until look is done, buf is full, the deadline
// passes, or the connection ends, and returns what it read: the caller
// must hand it on (Replay), for it is gone from conn. err is the read
// error that ended the look early (os.ErrDeadlineExceeded at the
// deadline, io.EOF), nil when look was done or buf full.
//
// On a socket each receive is made directly (readSocket), and the
// deadline is armed only if the bytes are not there yet.
func Read(conn net.Conn, buf []byte, deadline time.Time, look Look) ([]byte, error) {
	if got, ok, err := readSocket(conn, buf, deadline, look); ok {
		return got, err
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	n := 0
	var pace pacer
	for {
		if n == len(buf) {
			return buf[:n], nil
		}
		m, err := conn.Read(buf[n:])
		n += m
		if n > pace.looked && (err != nil || pace.due(n, len(buf))) {
			done, want := pace.look(look, buf[:n])
			if done {
				return buf[:n], nil
			}
			if want > len(buf) {
				buf = append(buf[:n], make([]byte, want-n)...)
			}
		}
		if err != nil {
			return buf[:n], err
		}
	}
}

// Replay is a connection whose first reads return bytes read from it
// already, then what follows on it.
type Replay struct {
	net.Conn
	buf []byte
	// put, when set, takes back held, the pooled buffer buf lies in,
	// once the last replayed byte is gone (read or discarded).
	put  func(any)
	held any
}

// NewReplay returns conn with b to be read first. b is the Replay's now.
func NewReplay(conn net.Conn, b []byte) *Replay { return &Replay{Conn: conn, buf: b} }

// ReplayPooled hands on rest, the bytes a handler read and must replay,
// when Read read them starting in bp, a buffer of a pool that put gives
// back to: read is what Read returned, rest a part of it. The result is
// conn itself when rest is empty, else a Replay of rest on conn. bp goes
// back once nothing of it is replayed: at once when rest is empty or Read
// outgrew bp, else when the Replay's last byte is read or discarded. A
// connection that ends before then leaves bp to the garbage collector.
func ReplayPooled(conn net.Conn, read, rest []byte, bp *[]byte, put func(any)) net.Conn {
	switch {
	case len(rest) == 0:
		put(bp)
		return conn
	case &read[0] == &(*bp)[0]:
		return &Replay{Conn: conn, buf: rest, put: put, held: bp}
	}
	put(bp) // Read outgrew it: rest lies in a buffer of its own
	return &Replay{Conn: conn, buf: rest}
}

func (r *Replay) Read(p []byte) (int, error) {
	if len(r.buf) > 0 {
		n := copy(p, r.buf)
		r.drop(n)
		return n, nil
	}
	return r.Conn.Read(p)
}

// drop takes the first n replayed bytes off, releasing their buffer once
// none is left.
func (r *Replay) drop(n int) {
	r.buf = r.buf[min(n, len(r.buf)):]
	if len(r.buf) == 0 && r.put != nil {
		put, held := r.put, r.held
		r.buf, r.put, r.held = nil, nil, nil
		put(held)
	}
}

// CloseWrite forwards the half-close, so that a terminal handler can pass
// the client's EOF on through a Replay.
func (r *Replay) CloseWrite() error {
	if cw, ok := r.Conn.(chain.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Buffered is how many of the replayed bytes are still to be read: a
// terminal handler may send them on itself (Pending, Discard) and then
// take the connection under them (Unwrap), the bare socket its fast paths
// need.
func (r *Replay) Buffered() int { return len(r.buf) }

// Pending returns the replayed bytes still to be read, without taking
// them: they stay valid until the next Read or Discard.
func (r *Replay) Pending() []byte { return r.buf }

// Discard drops the first n of the replayed bytes, sent on by the caller.
func (r *Replay) Discard(n int) { r.drop(n) }

// Unwrap returns the connection under the replayed bytes.
func (r *Replay) Unwrap() net.Conn { return r.Conn }
