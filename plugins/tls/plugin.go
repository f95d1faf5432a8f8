// Package tlsterm is the tls handler: a middleware that terminates TLS on
// a stream listener, so that the rest of the chain sees plaintext and
// the route handler sees the negotiated server name and protocol.
//
// Its certificates reload themselves: each certificate's and key's
// directory is watched (store.go, through pkg/filewatch), and a renewed
// pair is served from the next handshake, with no config reload; a new
// pair that does not load leaves the last good one served. The package
// is not named tls so as not to shadow crypto/tls.
package tlsterm

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// Name is the handler's name in a chain.
const Name = "tls"

// DefaultHandshakeTimeout bounds a client's handshake.
const DefaultHandshakeTimeout = 10 * time.Second

func init() {
	registry.Register(Name, func() any { return new(Handler) })
}

// Certificate is one entry of the certificates option.
type Certificate struct {
	// Cert is a PEM file: the leaf certificate, then its intermediates.
	Cert string `mapstructure:"cert"`
	// Key is the leaf's private key, PEM: PKCS#1, PKCS#8 or SEC1.
	Key string `mapstructure:"key"`
}

// Handler is the tls handler. Its exported fields are its options.
type Handler struct {
	// Certificates are served by SNI; the first when none matches.
	Certificates []Certificate `mapstructure:"certificates"`
	// ALPN are the application protocols offered, in preference order.
	ALPN []string `mapstructure:"alpn"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `mapstructure:"min_version"`
	// ClientCA is a PEM bundle; when set, clients must present a
	// certificate it signed.
	ClientCA string `mapstructure:"client_ca"`
	// HandshakeTimeout bounds the handshake.
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout"`

	// Set by Validate.
	pairs      []*pair
	clientCAs  *x509.CertPool
	minVersion uint16

	// Set by Provision, read-only afterwards.
	log      hclog.Logger
	config   *tls.Config
	metrics  handshakeMetrics
	shared   *chain.Shared
	key      storeKey
	store    *store
	closeOne sync.Once
}

// A UDP listener is refused by config validation: Handler is a stream
// middleware only (TLS runs over a stream; DTLS is another protocol).
var (
	_ chain.StreamMiddleware = (*Handler)(nil)
	_ chain.Validator        = (*Handler)(nil)
	_ chain.Provisioner      = (*Handler)(nil)
	_ chain.StatusReporter   = (*Handler)(nil)
)

// storeKey names a certificate store in chain.Shared: a reload that
// keeps a listener's tls handler and its files keeps the store, with its
// watch and what it loaded since.
type storeKey struct {
	listener string
	scope    string
	files    string
}

// Provision fills in the defaults, takes (or starts) the certificate
// store and builds the tls.Config; the options were checked and the
// pairs loaded by Validate.
func (h *Handler) Provision(pc chain.ProvisionContext) error {
	if h.HandshakeTimeout == 0 {
		h.HandshakeTimeout = DefaultHandshakeTimeout
	}
	h.log = pc.Logger.Named(Name)
	m, err := registerMetrics(pc.Metrics)
	if err != nil {
		return err
	}
	h.metrics = m
	var files []string
	for _, c := range h.Certificates {
		files = append(files, c.Cert, c.Key)
	}
	h.shared = pc.Shared
	h.key = storeKey{listener: pc.Listener, scope: pc.Scope, files: strings.Join(files, "\x00")}
	h.store = pc.Shared.Acquire(h.key, func() any {
		return newStore(h.Certificates, h.pairs, h.log, m.expiry)
	}).(*store)

	h.config = &tls.Config{
		MinVersion:     h.minVersion,
		NextProtos:     h.ALPN,
		GetCertificate: h.store.getCertificate,
	}
	if h.clientCAs != nil {
		h.config.ClientAuth = tls.RequireAndVerifyClientCert
		h.config.ClientCAs = h.clientCAs
	}
	return nil
}

// Close gives the store back; the last holder stops its watch.
func (h *Handler) Close() error {
	h.closeOne.Do(func() {
		if h.store != nil && h.shared.Release(h.key) {
			h.store.close()
		}
	})
	return nil
}
