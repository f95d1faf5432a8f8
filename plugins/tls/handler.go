package tlsterm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// WrapStream runs the handshake in the connection's own goroutine, under
// handshake_timeout, and hands the rest of the chain the *tls.Conn: it
// reads and writes plaintext, half-closes with close_notify (CloseWrite),
// and tells the route handler the negotiated server name and protocol
// (ConnectionState).
func (h *Handler) WrapStream(next chain.StreamHandler) chain.StreamHandler {
	return chain.StreamHandlerFunc(func(ctx context.Context, c *chain.Conn) error {
		start := time.Now()
		tc := tls.Server(c.Conn, h.config)
		_ = c.Conn.SetDeadline(start.Add(h.HandshakeTimeout))
		err := tc.HandshakeContext(ctx)
		h.metrics.duration.Observe(time.Since(start).Seconds())
		if err != nil {
			return h.fail(c, err)
		}
		// The idle timeout, if any, is the relay's from here on.
		_ = c.Conn.SetDeadline(time.Time{})
		h.metrics.ok.Inc()
		st := tc.ConnectionState()
		c.Annotate("tls_version", tls.VersionName(st.Version))
		c.Annotate("tls_cipher", tls.CipherSuiteName(st.CipherSuite))
		if st.ServerName != "" {
			c.Annotate("sni", st.ServerName)
		}
		if st.NegotiatedProtocol != "" {
			c.Annotate("alpn", st.NegotiatedProtocol)
		}
		if len(st.PeerCertificates) > 0 {
			c.Annotate("client_subject", st.PeerCertificates[0].Subject.String())
		}
		c.Conn = tc
		return next.ServeStream(ctx, c)
	})
}

// fail counts a failed handshake and closes the connection; the error
// returned is logged once by the supervisor.
func (h *Handler) fail(c *chain.Conn, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		h.metrics.timedOut.Inc()
		err = fmt.Errorf("tls handshake not complete within %s: %w", h.HandshakeTimeout, err)
	} else {
		h.metrics.failed.Inc()
		err = fmt.Errorf("tls handshake: %w", err)
	}
	_ = c.Close()
	return err
}
