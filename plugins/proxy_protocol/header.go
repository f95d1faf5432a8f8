package proxyprotocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/peek"
)

// The signatures, and the longest headers the specification allows: a v1
// line is at most 107 bytes; a v2 header is 16 bytes plus a 16-bit length.
var (
	sigV1 = proxyproto.SIGV1 // "PROXY"
	sigV2 = proxyproto.SIGV2
)

const (
	maxV1    = 107
	v2Fixed  = 16
	firstBuf = 512 // a v1 line, a v2 header with a few TLVs, and some data
)

// errTooLong is a v1 line with no end within 107 bytes, or a v2 header
// announcing more than go-proxyproto accepts.
var errTooLong = fmt.Errorf("header too long (v1: more than %d bytes, v2: more than %d bytes after the first %d)",
	maxV1, proxyproto.MaxV2HeaderSize, v2Fixed)

// outcome is what reading the start of a connection found.
type outcome int

const (
	gotHeader  outcome = iota // a complete, parsed header
	noHeader                  // the first bytes are not a PROXY signature
	incomplete                // a signature, then EOF or the deadline
	quiet                     // no byte at all before EOF or the deadline
	bad                       // a signature and bytes that do not parse
)

// readResult is what readHeader found and read.
type readResult struct {
	outcome outcome
	header  *proxyproto.Header
	rest    []byte // bytes read after the header, to replay (readHeader only)
	start   []byte // the first bytes seen, to decide on
	buf     []byte // every byte read, rest and start in it (readHeader only)
	err     error  // the read or parse error behind incomplete, quiet, bad
	expired bool   // the deadline ended the read
}

// readHeader reads from conn until it can tell whether a PROXY header is
// there and, when one is, until it is complete, all before deadline. The
// header may arrive in any number of segments: go-proxyproto insists on a
// v1 line in one read, so the framing is done here and the library only
// parses a complete header. Bytes read beyond the header are returned for
// replay, so nothing the client sent is lost: on a socket, one receive
// takes the header and the client's first bytes after it, which the
// proxy sends on in the header's own write (pkg/peek.Read). A client that
// starts with other bytes is told apart at its first byte that differs
// from both signatures, without waiting for more.
//
// buf is where the bytes go first; a header longer than buf is read into a
// larger one. res.rest and res.start alias buf or that larger one.
func readHeader(conn net.Conn, buf []byte, deadline time.Time) readResult {
	buf, err := peek.Read(conn, buf, deadline, func(b []byte) (bool, int) {
		n, done := frame(b)
		// A header longer than the buffer makes it grow to the header.
		return done, n
	})
	res := frameResult(buf, err)
	res.buf = buf
	return res
}

// frameResult is readHeader's finding in the bytes buf it read, which err
// ended early.
func frameResult(buf []byte, err error) readResult {
	n, done := frame(buf)
	switch {
	case done && n == 0:
		return readResult{outcome: noHeader, rest: buf, start: buf}
	case done && n < 0:
		return readResult{outcome: bad, start: buf, err: errTooLong}
	case done:
		return parse(buf, n)
	}
	if err == nil {
		err = io.ErrUnexpectedEOF // unreachable: frame decides within a header's length
	}
	out := incomplete
	if len(buf) == 0 {
		out = quiet
	}
	return readResult{outcome: out, rest: buf, start: buf, err: err, expired: chain.IsTimeout(err)}
}

// frame looks at the bytes read so far. done with n == 0: no header (the
// bytes are not a signature); done with n > 0: a complete header of n
// bytes; done with n < 0: a header too long (errTooLong). Not done: more bytes are
// needed, n being the buffer size the header needs (0: not known yet).
func frame(b []byte) (n int, done bool) {
	switch {
	case bytes.HasPrefix(b, sigV1):
		if i := bytes.IndexByte(b[:min(len(b), maxV1)], '\n'); i >= 0 {
			return i + 1, true
		}
		if len(b) >= maxV1 {
			return -1, true
		}
		return maxV1, false
	case bytes.HasPrefix(b, sigV2):
		if len(b) < v2Fixed {
			return 0, false
		}
		length := binary.BigEndian.Uint16(b[14:16])
		if length > proxyproto.MaxV2HeaderSize {
			// go-proxyproto refuses it once read: refuse it now, rather
			// than hold up to 64 KiB for each peer, trusted or not, that
			// announces a length and stalls.
			return -1, true
		}
		total := v2Fixed + int(length)
		if len(b) >= total {
			return total, true
		}
		return total, false
	case sigPrefix(b):
		return 0, false
	}
	return 0, true
}

// sigPrefix reports whether b is the start of either signature.
func sigPrefix(b []byte) bool {
	return bytes.HasPrefix(sigV1, b[:min(len(b), len(sigV1))]) && len(b) <= len(sigV1) ||
		bytes.HasPrefix(sigV2, b[:min(len(b), len(sigV2))]) && len(b) <= len(sigV2)
}

// parse hands the complete header b[:n] to go-proxyproto, which reads it
// from a bufio.Reader: a pooled one for a header that fits its buffer
// (nearly all do), so that a header costs go-proxyproto's allocations
// alone. The parsed header keeps nothing of b or the reader.
func parse(b []byte, n int) readResult {
	var r *bufio.Reader
	var pr *parseReader
	if n <= parseBuf {
		pr = parseReaders.Get().(*parseReader)
		pr.src.Reset(b[:n])
		pr.buf.Reset(&pr.src)
		r = pr.buf
		defer func() {
			pr.src.Reset(nil)
			pr.buf.Reset(&pr.src)
			parseReaders.Put(pr)
		}()
	} else {
		r = bufio.NewReaderSize(bytes.NewReader(b[:n]), n)
	}
	h, err := proxyproto.Read(r)
	if err == nil && r.Buffered() != 0 {
		err = errors.New("header length does not match its content")
	}
	if err != nil {
		return readResult{outcome: bad, err: err}
	}
	return readResult{outcome: gotHeader, header: h, rest: b[n:]}
}

// parseBuf is a pooled parse reader's buffer: a v1 line (107 bytes at
// most) or a v2 header with a few TLVs.
const parseBuf = 256

// parseReader is a bufio.Reader over a bytes.Reader, pooled as one.
type parseReader struct {
	src bytes.Reader
	buf *bufio.Reader
}

var parseReaders = sync.Pool{New: func() any {
	pr := new(parseReader)
	pr.buf = bufio.NewReaderSize(&pr.src, parseBuf)
	return pr
}}

// headerBufs are readHeader's first buffers, of firstBuf bytes. Bytes the
// client sent after its header stay in one until the next handler took
// them from their Replay, which gives it back (see WrapStream).
var headerBufs = sync.Pool{New: func() any { b := make([]byte, firstBuf); return &b }}

// putHeaderBuf gives a buffer back to headerBufs: a function, not a
// method value, so that passing it allocates nothing.
func putHeaderBuf(b any) { headerBufs.Put(b) }
