package proxyprotocol

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/peek"
)

// rejectErrs are made once: a flood of rejections allocates no errors.
var rejectErrs = func() (errs [numReasons]error) {
	for r := reason(0); r < numReasons; r++ {
		errs[r] = fmt.Errorf("proxy_protocol: %w (%s)", chain.ErrRejected, r)
	}
	return errs
}()

// WrapStream reads the header before next sees the connection. The
// bytes read after it are replayed through a wrapper (pkg/peek.Replay);
// a terminal handler sends them on first and then takes the bare socket
// under it, to splice and poll (the proxy: in the PROXY header's write,
// or pkg/relay before it relays).
func (h *Handler) WrapStream(next chain.StreamHandler) chain.StreamHandler {
	return chain.StreamHandlerFunc(func(ctx context.Context, c *chain.Conn) error {
		trusted := h.trusts(c.RemoteAddr())
		deadline := time.Now().Add(h.Timeout)
		bp := headerBufs.Get().(*[]byte)
		res := readHeader(c.Conn, *bp, deadline)
		if r, reject := decide(res, trusted, h.required); reject {
			headerBufs.Put(bp)
			return h.reject(c, r, res.err)
		}
		if res.header != nil {
			if a := clientAddr(res.header); a != nil {
				c.SetRemoteAddr(a)
			}
		}
		// bp goes back once the next handler took the bytes after the
		// header (the proxy, in its own header's write).
		c.Conn = peek.ReplayPooled(c.Conn, res.buf, res.rest, bp, putHeaderBuf)
		return next.ServeStream(ctx, c)
	})
}

// decide says whether what readHeader found closes the connection, and
// why. Only a trusted peer may send a header; a required one must. Bytes
// that are only the start of a signature ("P", "\r\n") are the client's
// own when no more came: a client that speaks first with them is let
// through at the timeout, not refused.
func decide(res readResult, trusted, required bool) (r reason, reject bool) {
	switch res.outcome {
	case gotHeader:
		if !trusted {
			return untrusted, true
		}
		return 0, false
	case bad:
		if !trusted {
			return untrusted, true
		}
		return malformed, true
	case incomplete:
		if fullSignature(res.start) {
			switch {
			case !trusted:
				return untrusted, true
			case res.expired:
				return timeout, true
			}
			return malformed, true // the peer closed mid-header
		}
	}
	// No header: other bytes, none at all, or a signature's start only.
	if trusted && required {
		if res.expired {
			return timeout, true
		}
		return missing, true
	}
	return 0, false
}

func fullSignature(b []byte) bool {
	return bytes.HasPrefix(b, sigV1) || bytes.HasPrefix(b, sigV2)
}

// reject closes c, counts and logs why, and returns an error that wraps
// chain.ErrRejected so that an earlier log handler records it.
func (h *Handler) reject(c *chain.Conn, r reason, cause error) error {
	h.rejected[r].Inc() // first: whoever sees the close sees the count
	_ = c.Close()
	if h.log.IsDebug() {
		args := []any{"reason", r.String()}
		if cause != nil {
			args = append(args, "error", cause)
		}
		c.Logger().Debug("connection rejected", args...)
	}
	return rejectErrs[r]
}

// trusts reports whether the peer may send a header. A Unix socket's peer
// has no address to match; whoever passed the socket file's permissions is
// trusted.
func (h *Handler) trusts(a net.Addr) bool {
	switch a := a.(type) {
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		ip := a.AddrPort().Addr().Unmap()
		for _, p := range h.prefixes {
			if p.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// clientAddr is the address the header names, or nil when the connection
// is the proxy's own (v2 LOCAL, such as its health checks) or the family
// is unknown (v1 UNKNOWN): then the peer's address stands.
func clientAddr(hd *proxyproto.Header) net.Addr {
	if hd.Command.IsLocal() || hd.TransportProtocol == proxyproto.UNSPEC {
		return nil
	}
	return hd.SourceAddr
}
