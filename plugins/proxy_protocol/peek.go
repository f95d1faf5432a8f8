package proxyprotocol

import (
	"io"
	"net"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/peek"
)

// peekHeader is readHeader for a socket, as HAProxy does it: it looks at
// the waiting bytes with MSG_PEEK (pkg/peek) and takes only the header out
// of the socket, so that the bytes after it (or all of them, without a
// header) stay there for the next handler, and the connection stays the
// bare socket the relay can splice and poll. ok is false when conn is not
// a socket (or the platform has no MSG_PEEK); readHeader is the way then.
func peekHeader(conn net.Conn, deadline time.Time) (res readResult, ok bool) {
	var hl int
	var done bool
	seen, ok, err := peek.Socket(conn, make([]byte, firstBuf), deadline, func(b []byte) (bool, int) {
		hl, done = frame(b)
		// A header longer than the buffer makes it grow to the header.
		return done, hl
	})
	if !ok {
		return readResult{}, false
	}
	if err != nil || !done {
		if err == nil {
			err = io.ErrUnexpectedEOF // unreachable: frame decides within a header's length
		}
		out := incomplete
		if len(seen) == 0 {
			out = quiet
		}
		return readResult{outcome: out, start: seen, err: err, expired: chain.IsTimeout(err)}, true
	}
	switch {
	case hl == 0:
		return readResult{outcome: noHeader, start: seen}, true
	case hl < 0:
		return readResult{outcome: bad, start: seen, err: errTooLong}, true
	}
	// The header is there in full: take exactly it.
	buf := seen[:hl]
	if _, err := io.ReadFull(conn, buf); err != nil {
		return readResult{outcome: bad, start: seen, err: err}, true
	}
	return parse(buf, hl), true
}
