package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/relay"
)

// send_proxy_protocol values.
const (
	SendV1 = "v1"
	SendV2 = "v2"
)

var sendVersions = []string{SendV1, SendV2}

// v1Unknown is what a v1 header says when the client is not on TCP: the
// v1 format has no Unix family.
var v1Unknown = []byte("PROXY UNKNOWN\r\n")

// proxyHeader is the PROXY header that tells the upstream who the client
// is: c.RemoteAddr is the client's address, taken from an accepted PROXY
// header when a proxy_protocol handler read one, and c.LocalAddr the
// address it connected to. A Unix client gets a v2 UNIX header (a v1
// UNKNOWN one); when the two ends are of no family the header can carry,
// v2 says LOCAL and v1 UNKNOWN, so the upstream uses the connection's own
// addresses.
func (h *Handler) proxyHeader(c *chain.Conn) ([]byte, error) {
	hd := proxyproto.HeaderProxyFromAddrs(h.sendVersion, c.RemoteAddr(), c.LocalAddr())
	if h.sendVersion == 1 && !hd.TransportProtocol.IsIPv4() && !hd.TransportProtocol.IsIPv6() {
		return v1Unknown, nil
	}
	b, err := hd.Format()
	if err != nil {
		return nil, fmt.Errorf("formatting the PROXY header: %w", err)
	}
	return b, nil
}

// firstWrite bounds the client bytes sent along with the header: a fresh
// connection's socket buffer takes that much at once, so the write never
// waits on the upstream reading.
const firstWrite = 16 << 10

// firstBytes is the PROXY header of one client connection, and the
// client's bytes that were already there when an upstream connected:
// they go in the header's own write, one segment instead of two and one
// wake-up of the upstream. Nothing waits for the client: a server that
// speaks first (SMTP, an SSH server's banner) gets its header at once.
// When that write fails and the next upstream is tried, the same bytes go
// to it.
type firstBytes struct {
	bufp *[]byte
	hdr  int  // the header is (*bufp)[:hdr]
	n    int  // client bytes after it
	read bool // the client's socket was read
	sent bool // the client bytes reached an upstream (and were counted)
}

// header formats the header once.
func (f *firstBytes) header(h *Handler, c *chain.Conn) ([]byte, error) {
	if f.bufp == nil {
		hdr, err := h.proxyHeader(c)
		if err != nil {
			return nil, err
		}
		f.bufp = relay.GetBuffer()
		f.hdr = copy((*f.bufp)[:firstWrite], hdr)
	}
	return (*f.bufp)[:f.hdr], nil
}

// withData is the header and the client bytes already there, taken the
// first time: those an earlier handler read and replays (proxy_protocol
// reads the client's first bytes with its header), else those waiting in
// the client's socket (relay.TakeWaiting).
func (f *firstBytes) withData(h *Handler, c *chain.Conn) ([]byte, error) {
	if _, err := f.header(h, c); err != nil {
		return nil, err
	}
	if !f.read {
		f.read = true
		n, err := relay.TakeWaiting(c, (*f.bufp)[f.hdr:firstWrite])
		if err != nil && !errors.Is(err, io.EOF) {
			// The client's failure, not the upstream's; an EOF the
			// relay reads again.
			return nil, &clientError{err}
		}
		f.n = n
	}
	return (*f.bufp)[:f.hdr+f.n], nil
}

// pending is the client bytes read but not sent yet: read for a plain
// upstream whose header write failed, when the next one is a TLS one,
// whose header goes alone.
func (f *firstBytes) pending() []byte {
	if f.sent || f.n == 0 {
		return nil
	}
	return (*f.bufp)[f.hdr : f.hdr+f.n]
}

// delivered counts the client bytes as the relay would have.
func (f *firstBytes) delivered(c *chain.Conn) {
	if !f.sent && f.n > 0 {
		c.AddIn(int64(f.n))
	}
	f.sent = true
}

func (f *firstBytes) release() {
	if f.bufp != nil {
		relay.PutBuffer(f.bufp)
		f.bufp = nil
	}
}

// clientError is a read of the client that failed while an upstream was
// being connected: it ends the connection, and says nothing about the
// upstream.
type clientError struct{ err error }

func (e *clientError) Error() string { return "client to upstream: " + e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

// writeProxyHeader writes the PROXY header to an upstream just connected,
// before any of the client's bytes: with the client's bytes already there
// on a plain upstream, alone on a TLS one (the client's bytes go inside
// the TLS that follows).
func (h *Handler) writeProxyHeader(up net.Conn, c *chain.Conn, first *firstBytes, plain bool, deadline time.Time) error {
	var b []byte
	var err error
	if plain {
		b, err = first.withData(h, c)
	} else {
		b, err = first.header(h, c)
	}
	if err != nil {
		return err
	}
	// The upstream just accepted, so the write fits in its socket buffer
	// and goes at once, arming no deadline. What it does not take waits
	// under the connect attempt's deadline, for a peer that never reads.
	n, err := relay.WriteNow(up, b)
	if err != nil {
		return fmt.Errorf("writing the PROXY header: %w", err)
	}
	if n < len(b) {
		if err := up.SetWriteDeadline(deadline); err != nil {
			return err
		}
		if _, err := up.Write(b[n:]); err != nil {
			return fmt.Errorf("writing the PROXY header: %w", err)
		}
		if err := up.SetWriteDeadline(time.Time{}); err != nil {
			return err
		}
	}
	if plain {
		first.delivered(c)
	}
	return nil
}
