package tlsterm

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/safefile"
)

// ExpiryWarning is how close to its expiry a certificate is worth a
// warning at load and `expiring: true` in /status.
const ExpiryWarning = 7 * 24 * time.Hour

// readFile reads a certificate or key file: a regular file of at most
// safefile.MaxPEM bytes, so that a wrong path (a FIFO, /dev/zero) can
// neither hang a reload nor exhaust memory. Tests of the documentation's
// examples replace it (see UseFiles), so that the examples can name the
// paths an operator would use.
var readFile = safefile.ReadPEM

// pair is one loaded certificate with what is shown of it.
type pair struct {
	cert     *tls.Certificate // Leaf set
	names    []string         // DNS SANs, else the subject's CN; lower case
	notAfter time.Time
	loadedAt time.Time
}

// loadPair reads and checks one certificate and its key: the PEM holds
// the leaf first and its intermediates after it; the key is PKCS#1,
// PKCS#8 or SEC1 (tls.X509KeyPair reads all three) and must match the
// leaf.
func loadPair(certFile, keyFile string, now time.Time) (*pair, error) {
	certPEM, err := readFile(certFile)
	if err != nil {
		return nil, &loadError{field: "cert", err: err}
	}
	keyPEM, err := readFile(keyFile)
	if err != nil {
		return nil, &loadError{field: "key", err: err}
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(certFile, keyFile), err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
	}
	p := &pair{cert: &c, notAfter: c.Leaf.NotAfter, loadedAt: now}
	for _, n := range c.Leaf.DNSNames {
		p.names = append(p.names, strings.ToLower(n))
	}
	for _, ip := range c.Leaf.IPAddresses {
		p.names = append(p.names, ip.String())
	}
	if len(p.names) == 0 && c.Leaf.Subject.CommonName != "" {
		p.names = append(p.names, strings.ToLower(c.Leaf.Subject.CommonName))
	}
	return p, nil
}

// loadError is a file that could not be read; field names its option.
type loadError struct {
	field string // cert or key
	err   error  // names the file (an *fs.PathError)
}

func (e *loadError) Error() string { return e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// expiring reports whether p expires within ExpiryWarning of now.
func (p *pair) expiring(now time.Time) bool {
	return p.notAfter.Sub(now) < ExpiryWarning
}

// matches reports whether p is for the server name sni: a name equal to
// it, or a wildcard "*.example.com" covering exactly one label in front.
func (p *pair) matches(sni string) bool {
	for _, n := range p.names {
		if n == sni {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if i := strings.IndexByte(sni, '.'); i > 0 && sni[i+1:] == rest {
				return true
			}
		}
	}
	return false
}

// pick returns the pair to serve for sni: the first whose names match
// it, else the first of all (no SNI, or a name none covers). An exact
// name is preferred over a wildcard, as browsers and HAProxy do.
func pick(pairs []*pair, sni string) *pair {
	sni = strings.ToLower(strings.TrimSuffix(sni, "."))
	if sni != "" {
		for _, p := range pairs {
			for _, n := range p.names {
				if n == sni {
					return p
				}
			}
		}
		for _, p := range pairs {
			if p.matches(sni) {
				return p
			}
		}
	}
	return pairs[0]
}

// loadCA reads a PEM bundle of CA certificates. Its errors name the
// file.
func loadCA(file string) (*x509.CertPool, error) {
	data, err := readFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// describe names a pair's files in a log line or error.
func describe(certFile, keyFile string) string {
	return fmt.Sprintf("%s, %s", certFile, keyFile)
}
