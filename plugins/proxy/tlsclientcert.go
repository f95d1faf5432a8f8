package proxy

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/safefile"
)

// clientPair is the tls option's client certificate, read again when its
// files change: a reload leaves an unchanged listener's chain as it is,
// and a certificate renewed on disk (certbot, cert-manager, a ConfigMap's
// symlink swap) must be presented from the next handshake all the same.
// The files are looked at (a stat each) only when an upstream asks for a
// certificate, which a resumed session does not.
type clientPair struct {
	certPath, keyPath string

	mu   sync.Mutex
	log  hclog.Logger // set by Provision; nil until then
	pair *tls.Certificate
	// at is the files as the served pair was read from; bad is the
	// files as a pair that failed was read from, so that a broken pair
	// is reported once, not at every handshake.
	at, bad stamps
}

// stamps identify a version of the two files.
type stamps [2]os.FileInfo

func (s stamps) same(o stamps) bool {
	for i := range s {
		a, b := s[i], o[i]
		if a == nil || b == nil || !os.SameFile(a, b) || !a.ModTime().Equal(b.ModTime()) || a.Size() != b.Size() {
			return false
		}
	}
	return true
}

// loadClientPair reads the pair at load; its error names both files.
func loadClientPair(certPath, keyPath string) (*clientPair, []byte, []byte, error) {
	p := &clientPair{certPath: certPath, keyPath: keyPath}
	st, certPEM, keyPEM, pair, err := p.read()
	if err != nil {
		return nil, nil, nil, err
	}
	p.pair, p.at = pair, st
	return p, certPEM, keyPEM, nil
}

// read stats and reads both files and parses the pair.
func (p *clientPair) read() (stamps, []byte, []byte, *tls.Certificate, error) {
	var st stamps
	var err error
	if st[0], err = os.Stat(p.certPath); err != nil {
		return st, nil, nil, nil, err
	}
	if st[1], err = os.Stat(p.keyPath); err != nil {
		return st, nil, nil, nil, err
	}
	certPEM, err := safefile.ReadPEM(p.certPath)
	if err != nil {
		return st, nil, nil, nil, err
	}
	keyPEM, err := safefile.ReadPEM(p.keyPath)
	if err != nil {
		return st, nil, nil, nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return st, nil, nil, nil, fmt.Errorf("%s with key %s: %w", p.certPath, p.keyPath, err)
	}
	return st, certPEM, keyPEM, &pair, nil
}

// setLogger gives the pair a logger for its reload lines.
func (p *clientPair) setLogger(log hclog.Logger) {
	p.mu.Lock()
	p.log = log
	p.mu.Unlock()
}

// get is tls.Config.GetClientCertificate: the current pair, read again
// first when a file changed. A new pair that does not read, parse or
// match is logged at error and the last good one is presented.
func (p *clientPair) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var now stamps
	c, cerr := os.Stat(p.certPath)
	k, kerr := os.Stat(p.keyPath)
	if cerr == nil && kerr == nil {
		now = stamps{c, k}
		if now.same(p.at) || now.same(p.bad) {
			return p.pair, nil
		}
	}
	st, _, _, pair, err := p.read()
	if err != nil {
		if !st.same(p.bad) && p.log != nil {
			p.log.Error("tls client certificate changed on disk but cannot be used; presenting the previous one", "cert", p.certPath, "key", p.keyPath, "error", err)
		}
		p.bad = st
		return p.pair, nil
	}
	p.pair, p.at, p.bad = pair, st, stamps{}
	if p.log != nil {
		p.log.Info("tls client certificate reloaded", "cert", p.certPath, "expires", pair.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return p.pair, nil
}

// expiryWarning is how close to its end a client certificate is warned
// about at each load: time enough for an operator to renew it.
const expiryWarning = 7 * 24 * time.Hour

// warnExpiry warns when the pair expires within expiryWarning of now, or
// already has: upstreams that check it will refuse the proxy.
func (p *clientPair) warnExpiry(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	end := p.pair.Leaf.NotAfter
	switch left := end.Sub(now); {
	case left <= 0:
		p.log.Warn("tls client certificate has expired", "cert", p.certPath, "expired", end.UTC().Format(time.RFC3339))
	case left < expiryWarning:
		p.log.Warn("tls client certificate expires soon", "cert", p.certPath, "expires", end.UTC().Format(time.RFC3339), "left", left.Round(time.Minute))
	}
}
