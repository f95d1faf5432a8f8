// Package proxy is the proxy handler: a terminal handler that forwards a
// stream connection (TCP, Unix) to one of its upstreams and copies bytes
// both ways, or, on a UDP listener, keeps one upstream socket per client
// address and routes the replies back. The balance, the connect timeout
// and the skipping of failed upstreams are the same for both.
package proxy

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
	"github.com/sluice-dev/sluice/pkg/relay"
)

// Name is the handler's name in a chain.
const Name = "proxy"

// Defaults, as documented in the README.
const (
	DefaultBalance        = RoundRobin
	DefaultConnectTimeout = 5 * time.Second
	DefaultFailTimeout    = 10 * time.Second
)

func init() {
	registry.Register(Name, func() any { return new(Handler) })
}

// Handler is the proxy handler. Its exported fields are its options.
type Handler struct {
	// Upstreams are tcp://host:port, unix:///path (or unix:relative/path)
	// for stream listeners, udp://host:port for UDP listeners.
	Upstreams []string `mapstructure:"upstreams"`
	// Balance picks the upstream: round_robin, random or least_conn.
	Balance string `mapstructure:"balance"`
	// ConnectTimeout bounds one connect attempt.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	// FailTimeout is how long an upstream that failed is skipped.
	FailTimeout time.Duration `mapstructure:"fail_timeout"`
	// SendProxyProtocol (v1 or v2) writes a PROXY protocol header with
	// the client's address to each upstream connection before any data.
	SendProxyProtocol string `mapstructure:"send_proxy_protocol"`
	// HealthCheck checks every upstream actively; nil: only the passive
	// fail_timeout marks an upstream down.
	HealthCheck *HealthCheck `mapstructure:"health_check"`
	// TLS, when set, has the proxy speak TLS to every upstream.
	TLS *TLS `mapstructure:"tls"`
	// TCPKeepAlive is the keepalive of TCP upstream connections: the
	// first probe after this much silence, then one as often; 0 turns
	// it off; nil is listener.DefaultKeepAlive.
	TCPKeepAlive *time.Duration `mapstructure:"tcp_keepalive"`

	targets []target // parsed by Validate
	// named: an upstream is not an IP address, so opening a UDP
	// flow's socket may look a name up (packet.go); set by Validate.
	named       bool
	dialer      net.Dialer // with tcp_keepalive, set by Provision
	sendVersion byte       // 0: no header; 1 or 2
	// tlsBase is the tls option's files, read by Validate; each
	// upstream gets a clone with its server name. tlsFingerprint is
	// their hash, part of a health checker's key.
	tlsBase        *tls.Config
	tlsFingerprint string
	clientPair     *clientPair // tls.cert and tls.key; nil without
	pool           *pool
	log            hclog.Logger
	// shared holds the health checkers under checkKeys, one per upstream,
	// across reloads; Close gives them back.
	shared      *chain.Shared
	checkKeys   []checkerKey
	unavailable prometheus.Counter
	closeOnce   sync.Once
	// paths counts the copy paths taken, so that a test can see that an
	// unwrapped TCP connection reached the kernel's splice path.
	paths relay.Stats

	// relays counts the goroutines that carry UDP replies back or open
	// a UDP flow's socket (packet.go); Close waits for them. closed
	// refuses new ones once Close has begun.
	mu     sync.Mutex
	closed bool
	relays sync.WaitGroup
}

var (
	_ chain.StreamHandler    = (*Handler)(nil)
	_ chain.PacketHandler    = (*Handler)(nil)
	_ chain.Validator        = (*Handler)(nil)
	_ chain.NetworkValidator = (*Handler)(nil)
	_ chain.Provisioner      = (*Handler)(nil)
)

// Close waits for the UDP reply relays to end. The supervisor calls it
// when the handler's generation closes, after ending its flows, whose
// end closes the relays' sockets.
func (h *Handler) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.relays.Wait()
	h.closeOnce.Do(func() {
		// A checker whose upstream the new chain keeps is still held
		// by it; the last holder stops it.
		for i, k := range h.checkKeys {
			if h.shared.Release(k) {
				h.pool.ups[i].check.close()
			}
		}
	})
	return nil
}
