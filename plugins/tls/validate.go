package tlsterm

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/pkg/decode"
)

// Validate checks the options and loads every pair, so that `sluice
// validate` reports a certificate that does not parse or does not match
// its key, as `nginx -t` does. Every problem is reported under its key.
func (h *Handler) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &decode.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if len(h.Certificates) == 0 {
		add("certificates", "at least one {cert, key} is required")
	}
	h.pairs = h.pairs[:0]
	now := time.Now()
	for i, c := range h.Certificates {
		at := fmt.Sprintf("certificates[%d]", i)
		if c.Cert == "" {
			add(at+".cert", "required: the PEM file of the certificate and its intermediates")
		}
		if c.Key == "" {
			add(at+".key", "required: the PEM file of the certificate's private key")
		}
		if c.Cert == "" || c.Key == "" {
			continue
		}
		p, err := loadPair(c.Cert, c.Key, now)
		if err != nil {
			var le *loadError
			if errors.As(err, &le) {
				at += "." + le.field
			}
			add(at, "%v", err)
			continue
		}
		h.pairs = append(h.pairs, p)
	}
	for i, p := range h.ALPN {
		if p == "" || len(p) > 255 {
			add(fmt.Sprintf("alpn[%d]", i), "a protocol name is 1 to 255 bytes, e.g. \"h2\" or \"http/1.1\"")
		}
	}
	switch h.MinVersion {
	case "", "1.2":
		h.minVersion = tls.VersionTLS12
	case "1.3":
		h.minVersion = tls.VersionTLS13
	default:
		add("min_version", "%q is not supported: \"1.2\" (default) or \"1.3\"", h.MinVersion)
	}
	h.clientCAs = nil
	if h.ClientCA != "" {
		pool, err := loadCA(h.ClientCA)
		if err != nil {
			add("client_ca", "%v", err)
		}
		h.clientCAs = pool
	}
	if h.HandshakeTimeout < 0 {
		add("handshake_timeout", "must be > 0 (omit it for the default, 10s)")
	}
	return errors.Join(errs...)
}
