package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/decode"
	"github.com/sluice-dev/sluice/pkg/listener"
)

// Balance values.
const (
	RoundRobin = "round_robin"
	Random     = "random"
	LeastConn  = "least_conn"
)

var balances = []string{RoundRobin, Random, LeastConn}

// target is one parsed upstream URL.
type target struct {
	url     string // as written in the config: the metrics label
	network string // tcp, unix or udp, for net.Dial
	address string
	// literal says that dialing it looks nothing up: a Unix path, or
	// an IP address and a port.
	literal bool
}

func (t target) datagram() bool { return t.network == "udp" }

// Validate checks the options and parses the upstream URLs. Every problem
// is reported, each under its key.
func (h *Handler) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &decode.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if len(h.Upstreams) == 0 {
		add("upstreams", "required: a list of tcp://host:port, unix:///path or udp://host:port")
	}
	h.targets, h.named = h.targets[:0], false
	for i, raw := range h.Upstreams {
		t, err := parseUpstream(raw)
		if err != nil {
			add(fmt.Sprintf("upstreams[%d]", i), "%v", err)
			continue
		}
		h.targets = append(h.targets, t)
		if _, err := netip.ParseAddrPort(t.address); err != nil {
			h.named = true
		}
	}
	if h.Balance != "" && !oneOf(h.Balance, balances) {
		add("balance", "invalid value %q (allowed: %s)", h.Balance, strings.Join(balances, ", "))
	}
	if h.ConnectTimeout < 0 {
		add("connect_timeout", "must not be negative")
	}
	if h.FailTimeout < 0 {
		add("fail_timeout", "must not be negative")
	}
	if ka := h.TCPKeepAlive; ka != nil {
		if msg := listener.CheckKeepAlive(*ka); msg != "" {
			add("tcp_keepalive", "%s", msg)
		}
	}
	switch h.SendProxyProtocol {
	case "":
		h.sendVersion = 0
	case SendV1:
		h.sendVersion = 1
	case SendV2:
		h.sendVersion = 2
	default:
		add("send_proxy_protocol", "invalid value %q (allowed: %s)", h.SendProxyProtocol, strings.Join(sendVersions, ", "))
	}
	if hc := h.HealthCheck; hc != nil {
		switch {
		case hc.Interval < 0:
			add("health_check.interval", "must be > 0 (omit it for the default, 2s)")
		case hc.Interval > 0 && hc.Interval < MinCheckInterval:
			// Each upstream's checker connects once an interval: 1ns
			// made every one a busy loop of connects that took whole
			// CPUs and thousands of sockets, and the reload passed.
			add("health_check.interval", "must be at least %s (omit it for the default, 2s)", MinCheckInterval)
		}
		if hc.Timeout < 0 {
			add("health_check.timeout", "must be > 0 (omit it for the default, 1s)")
		}
		if hc.Rise < 0 {
			add("health_check.rise", "must be > 0 (omit it for the default, 2)")
		}
		if hc.Fall < 0 {
			add("health_check.fall", "must be > 0 (omit it for the default, 3)")
		}
		// A probe allocates a buffer as large as expect and writes send
		// whole, every interval for every upstream: a 2 MB expect on 500
		// upstreams held 2.5 GB.
		if len(hc.Send) > MaxCheckBytes {
			add("health_check.send", "is %d bytes long; at most %d", len(hc.Send), MaxCheckBytes)
		}
		if len(hc.Expect) > MaxCheckBytes {
			add("health_check.expect", "is %d bytes long; at most %d", len(hc.Expect), MaxCheckBytes)
		}
	}
	h.validateTLS(add)
	return errors.Join(errs...)
}

// ValidateNetwork refuses upstreams of the other kind than the listener:
// a stream cannot be forwarded as datagrams, nor the reverse.
func (h *Handler) ValidateNetwork(network string) error {
	datagram := network == "udp" || network == "udp4" || network == "udp6"
	var errs []error
	if datagram && h.HealthCheck != nil {
		errs = append(errs, &decode.FieldError{Key: "health_check", Msg: fmt.Sprintf("is for stream listeners (tcp, unix): a UDP upstream has no connection to check; on a %s listener an upstream answering with ICMP port unreachable is skipped for fail_timeout", network)})
	}
	if datagram && h.SendProxyProtocol != "" {
		errs = append(errs, &decode.FieldError{Key: "send_proxy_protocol", Msg: fmt.Sprintf("is for stream listeners (tcp, unix); a %s listener forwards datagrams without a header", network)})
	}
	if datagram {
		if err := validateTLSNetwork(h, network); err != nil {
			errs = append(errs, err)
		}
	}
	for i, raw := range h.Upstreams {
		t, err := parseUpstream(raw)
		if err != nil {
			continue // reported by Validate
		}
		switch {
		case datagram && !t.datagram():
			errs = append(errs, &decode.FieldError{Key: fmt.Sprintf("upstreams[%d]", i), Msg: fmt.Sprintf("%q is a stream upstream; a %s listener forwards datagrams to udp://host:port upstreams", raw, network)})
		case !datagram && t.datagram():
			errs = append(errs, &decode.FieldError{Key: fmt.Sprintf("upstreams[%d]", i), Msg: fmt.Sprintf("%q is a datagram upstream; a %s listener forwards to tcp://host:port or unix:///path upstreams", raw, network)})
		}
	}
	return errors.Join(errs...)
}

// Provision fills in the defaults and sets up the upstream pool from the
// targets Validate parsed (registry.New runs it first).
func (h *Handler) Provision(ctx chain.ProvisionContext) error {
	if h.Balance == "" {
		h.Balance = DefaultBalance
	}
	if h.ConnectTimeout == 0 {
		h.ConnectTimeout = DefaultConnectTimeout
	}
	if h.FailTimeout == 0 {
		h.FailTimeout = DefaultFailTimeout
	}
	ka := listener.DefaultKeepAlive
	if h.TCPKeepAlive != nil {
		ka = *h.TCPKeepAlive
	}
	h.dialer = keepAliveDialer(ka)
	h.log = ctx.Logger.Named(Name)
	upstreamErrors, err := chain.Register(ctx.Metrics, newUpstreamErrors())
	if err != nil {
		return err
	}
	active, err := chain.Register(ctx.Metrics, newUpstreamActive())
	if err != nil {
		return err
	}
	if h.unavailable, err = chain.Register(ctx.Metrics, newUnavailable()); err != nil {
		return err
	}
	h.pool = newPool(h.targets, h.Balance, h.FailTimeout, h.log, func(u string) counter {
		return upstreamErrors.WithLabelValues(u)
	})
	for _, u := range h.pool.ups {
		u.gauge = active.WithLabelValues(u.url)
		if h.tlsBase != nil {
			u.tls = h.upstreamTLS(u.target)
		}
	}
	if h.clientPair != nil {
		h.clientPair.setLogger(h.log)
		h.clientPair.warnExpiry(time.Now())
	}
	if h.TLS != nil && h.TLS.InsecureSkipVerify {
		// At every load, not once: an operator reading the log after a
		// reload must not miss that these upstreams are not verified.
		h.log.Warn("tls.insecure_skip_verify is set: upstream certificates are not verified, the connections are encrypted but not authenticated", "upstreams", strings.Join(h.Upstreams, ", "))
	}
	if h.HealthCheck != nil {
		up, err := chain.Register(ctx.Metrics, newUpstreamUp())
		if err != nil {
			return err
		}
		opts := h.HealthCheck.withDefaults()
		h.shared = ctx.Shared
		for _, u := range h.pool.ups {
			k := checkerKey{listener: ctx.Listener, url: u.url, check: opts, tls: h.tlsFingerprint}
			u.check = h.shared.Acquire(k, func() any {
				return newChecker(u.target, checkTLS(u.tls), opts, h.log, up.WithLabelValues(u.url))
			}).(*checker)
			h.checkKeys = append(h.checkKeys, k)
		}
	}
	return nil
}

const upstreamForms = "want tcp://host:port, unix:///path or udp://host:port"

// parseUpstream reads one upstream URL. A Unix socket path is absolute
// (unix:///run/app.sock) or relative to the working directory
// (unix:app.sock); unix://app.sock would make "app.sock" a host name, so
// it is refused with the two right spellings.
func parseUpstream(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return target{}, fmt.Errorf("invalid upstream %q: %s", raw, upstreamForms)
	}
	switch u.Scheme {
	case "tcp", "udp":
		if u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return target{}, fmt.Errorf("invalid upstream %q: want %s://host:port and nothing else", raw, u.Scheme)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" {
			return target{}, fmt.Errorf("invalid upstream %q: want %s://host:port, e.g. %s://127.0.0.1:8080", raw, u.Scheme, u.Scheme)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return target{}, fmt.Errorf("invalid upstream %q: port %q is not a number from 1 to 65535", raw, port)
		}
		_, ipErr := netip.ParseAddr(host)
		return target{url: raw, network: u.Scheme, address: u.Host, literal: ipErr == nil}, nil
	case "unix":
		path := u.Path
		if u.Opaque != "" {
			path = u.Opaque
		}
		if u.Host != "" || path == "" || u.RawQuery != "" || u.Fragment != "" {
			return target{}, fmt.Errorf("invalid upstream %q: want unix:///absolute/path or unix:relative/path", raw)
		}
		if len(path) > listener.MaxUnixPath {
			return target{}, fmt.Errorf("invalid upstream %q: socket path is %d bytes long; the kernel accepts at most %d", raw, len(path), listener.MaxUnixPath)
		}
		return target{url: raw, network: "unix", address: path, literal: true}, nil
	}
	return target{}, fmt.Errorf("invalid upstream %q: unknown scheme %q: %s", raw, u.Scheme, upstreamForms)
}

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// keepAliveDialer dials TCP with keepalive probes after d of silence, or
// none when d is 0 (a negative KeepAlive is how net.Dialer says off). Its
// connects start by RawSyscall (startConnect).
func keepAliveDialer(d time.Duration) net.Dialer {
	if d <= 0 {
		return net.Dialer{KeepAlive: -1, Control: startConnect}
	}
	return net.Dialer{KeepAliveConfig: listener.KeepAliveConfig(d), Control: startConnect}
}
