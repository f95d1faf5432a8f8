// Package proxyprotocol is the proxy_protocol handler: a middleware that
// reads a PROXY protocol header (v1 or v2) sent by a trusted load balancer
// in front of sluice, and hands the client's address from it to the rest
// of the chain (log's remote, ratelimit's per_ip, the proxy's
// send_proxy_protocol).
//
// The header is read by the connection's own goroutine under the
// handler's timeout, never in the accept loop, and the bytes that came
// with it are replayed to the next handler (header.go, pkg/peek.Read and
// Replay). On a socket one receive takes the header and those bytes
// together; the proxy sends them on in its own PROXY header's write, and
// pkg/relay before it relays, both then on the bare socket.
package proxyprotocol

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// Name is the handler's name in a chain.
const Name = "proxy_protocol"

// DefaultTimeout is how long a connection may take to send its header.
const DefaultTimeout = 5 * time.Second

func init() {
	registry.Register(Name, func() any { return new(Handler) })
}

// Handler is the proxy_protocol handler. Its exported fields are its
// options.
type Handler struct {
	// Trusted are the CIDRs (or single addresses) of the peers allowed to
	// send a header. Peers of a Unix listener are always trusted: the
	// socket file's permissions decide who may connect.
	Trusted []string `mapstructure:"trusted"`
	// Required closes a trusted peer's connection that has no header;
	// false lets it pass with its own address. nil: true.
	Required *bool `mapstructure:"required"`
	// Timeout bounds the wait for the header.
	Timeout time.Duration `mapstructure:"timeout"`

	// Runtime state, set by Validate and Provision, read-only afterwards.
	prefixes []netip.Prefix
	required bool
	log      hclog.Logger
	rejected [numReasons]prometheus.Counter
}

var (
	_ chain.StreamMiddleware = (*Handler)(nil)
	_ chain.Validator        = (*Handler)(nil)
	_ chain.NetworkValidator = (*Handler)(nil)
	_ chain.Provisioner      = (*Handler)(nil)
)

// Provision fills in the defaults and resolves the rejection counters;
// the options were checked by registry.New.
func (h *Handler) Provision(pc chain.ProvisionContext) error {
	if h.Timeout == 0 {
		h.Timeout = DefaultTimeout
	}
	h.required = h.Required == nil || *h.Required
	h.log = pc.Logger.Named(Name)
	rejected, err := chain.Register(pc.Metrics, newRejected())
	if err != nil {
		return err
	}
	for r := reason(0); r < numReasons; r++ {
		h.rejected[r] = rejected.WithLabelValues(r.String())
	}
	return nil
}

// reason is why a connection was closed before the next handler saw it:
// the label of sluice_proxy_protocol_rejected_total.
type reason int

const (
	untrusted reason = iota // a header from a peer not in trusted
	malformed               // a header that does not parse, or ends early
	missing                 // no header from a trusted peer, required: true
	timeout                 // no complete header within timeout
	numReasons
)

func (r reason) String() string {
	switch r {
	case untrusted:
		return "untrusted"
	case malformed:
		return "malformed"
	case missing:
		return "missing"
	case timeout:
		return "timeout"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}
