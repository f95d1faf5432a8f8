package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/sluice-dev/sluice/internal/safefile"
	"github.com/sluice-dev/sluice/pkg/decode"
)

// TLS is the tls option: the proxy speaks TLS to its upstreams, verifying
// their certificates, and the client's bytes travel inside.
type TLS struct {
	// ServerName is sent as SNI and is the name the upstream's
	// certificate must hold; default: the upstream's host.
	ServerName string `mapstructure:"server_name"`
	// CA is a PEM bundle of the authorities to trust; default: the
	// system's pool.
	CA string `mapstructure:"ca"`
	// Cert and Key are a client certificate (chain) and its key, for
	// upstreams that require one (mTLS).
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
	// InsecureSkipVerify accepts any certificate: encrypted, not
	// authenticated. Every load warns about it.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// upstreamSessions is how many TLS sessions are kept per upstream for
// resumption: a resumed handshake skips the certificate exchange and its
// signature checks, which is most of a handshake's CPU on both ends.
const upstreamSessions = 64

// validateTLS reads and checks the files the tls option names, and keeps
// what they hold in h.tlsBase for Provision: a bad file fails the load
// (and `sluice validate`) rather than every connection. add reports one
// problem under its key.
func (h *Handler) validateTLS(add func(key, format string, args ...any)) {
	h.tlsBase, h.tlsFingerprint, h.clientPair = nil, "", nil
	o := h.TLS
	if o == nil {
		return
	}
	ok := true
	base := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: o.InsecureSkipVerify}
	// The fingerprint tells a health checker made with these files from
	// one made with the same paths but other contents.
	fp := sha256.New()
	fmt.Fprintf(fp, "%q %q %t\n", o.ServerName, o.CA, o.InsecureSkipVerify)
	if o.CA != "" {
		pem, err := safefile.ReadPEM(o.CA)
		switch {
		case err != nil:
			add("tls.ca", "%v", err)
			ok = false
		default:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				add("tls.ca", "%s holds no PEM certificate", o.CA)
				ok = false
			}
			base.RootCAs = pool
			fp.Write(pem)
		}
	}
	switch {
	case o.Cert != "" && o.Key == "":
		add("tls.key", "required with tls.cert: the client certificate's private key")
		ok = false
	case o.Cert == "" && o.Key != "":
		add("tls.cert", "required with tls.key: the client certificate (PEM, leaf first)")
		ok = false
	case o.Cert != "":
		pair, certPEM, keyPEM, err := loadClientPair(o.Cert, o.Key)
		if err != nil {
			add("tls.cert", "%v", err)
			ok = false
			break
		}
		// Presented through the callback, so that a pair renewed on
		// disk is taken without a reload.
		base.GetClientCertificate = pair.get
		h.clientPair = pair
		fp.Write(certPEM)
		fp.Write(keyPEM)
	}
	if o.ServerName == "" && !o.InsecureSkipVerify {
		for i, t := range h.targets {
			if t.network == "unix" {
				add("tls.server_name", "required with a unix:// upstream (%s): a socket path is no name to verify the upstream's certificate against; name the one it holds, or set insecure_skip_verify", h.Upstreams[i])
				ok = false
				break
			}
		}
	}
	if ok {
		h.tlsBase, h.tlsFingerprint = base, hex.EncodeToString(fp.Sum(nil))
	}
}

// upstreamTLS is the client config for one upstream: the base with its
// server name and a session cache of its own, so that repeated
// connections resume.
func (h *Handler) upstreamTLS(t target) *tls.Config {
	cfg := h.tlsBase.Clone()
	cfg.ServerName = h.TLS.ServerName
	if cfg.ServerName == "" && t.network != "unix" {
		host, _, err := net.SplitHostPort(t.address)
		if err == nil {
			cfg.ServerName = host
		}
	}
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(upstreamSessions)
	return cfg
}

// errHandshakeTimeout is a TLS handshake with an upstream that did not
// finish within connect_timeout.
var errHandshakeTimeout = errors.New("tls handshake timed out")

// handshake runs the client side of TLS over conn within ctx. On failure
// conn is closed and the error says why (an x509 reason when the
// upstream's certificate was refused).
func handshake(ctx context.Context, conn net.Conn, cfg *tls.Config) (net.Conn, error) {
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errHandshakeTimeout
		}
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return &tlsUpstream{Conn: tc, raw: conn}, nil
}

// tlsUpstream is an upstream connection inside TLS. Its CloseWrite sends
// close_notify and then the TCP FIN: a peer that waits for the socket's
// EOF rather than the alert still sees the client's half-close, and
// nothing more may be written after close_notify anyway.
type tlsUpstream struct {
	*tls.Conn
	raw net.Conn
}

func (c *tlsUpstream) CloseWrite() error {
	err := c.Conn.CloseWrite()
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		if cerr := cw.CloseWrite(); err == nil {
			err = cerr
		}
	}
	return err
}

// validateTLSNetwork refuses tls on a datagram listener.
func validateTLSNetwork(h *Handler, network string) error {
	if h.TLS == nil {
		return nil
	}
	return &decode.FieldError{Key: "tls", Msg: fmt.Sprintf("is for stream listeners (tcp, unix); a %s listener forwards datagrams (DTLS is not supported)", network)}
}
