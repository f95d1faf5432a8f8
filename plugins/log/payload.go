package log

import (
	"encoding/hex"
	"errors"
	"net"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// PayloadLimit is how many bytes of each read, write or datagram
// payload: true logs.
// Enough to recognise a protocol's greeting or a request line; a bulk
// transfer logs one line a read, not its content.
const PayloadLimit = 128

// payloadConn logs what passes through it at trace level. It exists only
// with payload: true; it hides the socket from the terminal handler, which
// then copies through Read and Write instead of splicing.
type payloadConn struct {
	net.Conn
	base hclog.Logger // the listener's: tells whether trace is on
	c    *chain.Conn  // its Logger is built only when something is logged
}

func newPayloadConn(nc net.Conn, base hclog.Logger, c *chain.Conn) *payloadConn {
	return &payloadConn{Conn: nc, base: base, c: c}
}

func (p *payloadConn) Read(b []byte) (int, error) {
	n, err := p.Conn.Read(b)
	if n > 0 && p.base.IsTrace() {
		p.trace("in", b[:n])
	}
	return n, err
}

func (p *payloadConn) Write(b []byte) (int, error) {
	n, err := p.Conn.Write(b)
	if n > 0 && p.base.IsTrace() {
		p.trace("out", b[:n])
	}
	return n, err
}

// trace logs one read or write.
func (p *payloadConn) trace(direction string, b []byte) {
	traceData(p.c.Logger().Named(Name), direction, b)
}

// traceData logs one read, write or datagram at trace: its length, and
// its first PayloadLimit bytes as a quoted string when they are UTF-8,
// else as hex.
func traceData(logger hclog.Logger, direction string, b []byte) {
	shown := b
	if len(shown) > PayloadLimit {
		// Cut at a rune boundary, so that text stays text.
		k := PayloadLimit
		for k > PayloadLimit-utf8.UTFMax && !utf8.RuneStart(b[k]) {
			k--
		}
		shown = b[:k]
	}
	args := []any{"direction", direction, "len", len(b), "truncated", len(b) > len(shown)}
	if utf8.Valid(shown) {
		// Quote keeps a line break in the data on the log's one line.
		args = append(args, "data", hclog.Quote(shown))
	} else {
		args = append(args, "data_hex", hex.EncodeToString(shown))
	}
	logger.Trace("data", args...)
}

var errNoHalfClose = errors.New("connection does not support half-close")

// CloseWrite forwards half-close, which echo and proxy rely on.
func (p *payloadConn) CloseWrite() error {
	if cw, ok := p.Conn.(chain.CloseWriter); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}
