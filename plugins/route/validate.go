package route

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-dev/sluice/pkg/decode"
	"github.com/sluice-dev/sluice/pkg/registry"
)

var protocols = []string{"tls", "http", "ssh"}

// Validate checks the options on their own: the matchers of every route.
// The nested chains are checked against the listener's network by
// ValidateNetwork. Every problem is reported, each naming its option.
func (h *Handler) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &decode.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	if h.Timeout < 0 {
		add("timeout", "must not be negative (omit it for the default, %s)", DefaultTimeout)
	}
	switch {
	case h.MaxBytes < 0:
		add("max_bytes", "must not be negative (omit it for the default, 16KiB)")
	case h.MaxBytes > MaxMaxBytes:
		add("max_bytes", "%s is too large: at most 1MiB, which each connection may hold while the route decides", h.MaxBytes)
	}
	if len(h.Routes) == 0 && len(h.Default) == 0 {
		add("routes", "required: at least one route, or a default")
	}
	names := map[string]int{}
	for i := range h.Routes {
		r := &h.Routes[i]
		key := "routes[" + strconv.Itoa(i) + "]"
		if r.Name != "" {
			switch {
			case r.Name == "default" || r.Name == "timeout" || r.Name == "closed":
				add(key+".name", "%q is reserved for the metric's own labels", r.Name)
			case names[r.Name] > 0:
				add(key+".name", "duplicate route name %q (also routes[%d])", r.Name, names[r.Name]-1)
			default:
				if _, err := strconv.Atoi(r.Name); err == nil {
					add(key+".name", "%q would read as another route's index; use a name with a letter", r.Name)
				}
				names[r.Name] = i + 1
			}
		}
		m, merrs := compileMatch(&r.Match)
		for _, fe := range merrs {
			add(key+".match"+dot(fe.Key), "%s", fe.Msg)
		}
		if merrs == nil && m.empty() {
			add(key+".match", "required: at least one of sni, alpn, http_host, protocol, remote (a catch-all is the default)")
		}
	}
	return errors.Join(errs...)
}

func dot(key string) string {
	if key == "" || strings.HasPrefix(key, "[") {
		return key
	}
	return "." + key
}

// ValidateNetwork checks every nested chain as a listener's chain of this
// network is checked, and returns their problems as registry.PathErrors,
// so that each is reported at its own key path (routes[2].chain[0].handler).
func (h *Handler) ValidateNetwork(network string) error {
	if registry.IsDatagram(network) {
		return &decode.FieldError{Msg: fmt.Sprintf("routes connections by their first bytes: it works on stream listeners (tcp, unix), not on %s listeners", network)}
	}
	var errs []error
	// rekey places a key relative to a chain ("chain[0].handler") at the
	// nested chain's own key ("routes[2].chain[0].handler", "default[0].handler").
	nested := func(rekey func(string) string, specs []registry.Spec) {
		for _, err := range registry.ValidateChain(network, specs) {
			var pe *registry.PathError
			if errors.As(err, &pe) {
				errs = append(errs, &registry.PathError{Key: rekey(pe.Key), Msg: pe.Msg})
			}
		}
	}
	for i := range h.Routes {
		prefix := "routes[" + strconv.Itoa(i) + "]."
		nested(func(k string) string { return prefix + k }, h.Routes[i].Chain)
	}
	if h.Default != nil {
		nested(func(k string) string { return "default" + strings.TrimPrefix(k, "chain") }, h.Default)
	}
	return errors.Join(errs...)
}

// compile turns the validated matchers into their runtime form.
func (h *Handler) compile() error {
	h.matchers = make([]matcher, len(h.Routes))
	h.needBytes = false
	for i := range h.Routes {
		m, errs := compileMatch(&h.Routes[i].Match)
		if errs != nil {
			return fmt.Errorf("routes[%d].match: %w", i, errs[0])
		}
		h.matchers[i] = m
		h.needBytes = h.needBytes || m.needBytes()
	}
	return nil
}

func compileMatch(mt *Match) (matcher, []*decode.FieldError) {
	var m matcher
	var errs []*decode.FieldError
	bad := func(key, format string, args ...any) {
		errs = append(errs, &decode.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	names := func(key string, in []string) []string {
		out := make([]string, 0, len(in))
		for j, n := range in {
			n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
			switch {
			case n == "":
				bad(fmt.Sprintf("%s[%d]", key, j), "empty name")
			case strings.Contains(n[min(len(n), 1):], "*") || (strings.HasPrefix(n, "*") && !strings.HasPrefix(n, "*.")):
				bad(fmt.Sprintf("%s[%d]", key, j), "invalid name %q: a wildcard is a leading \"*.\" only, e.g. \"*.example.com\"", in[j])
			}
			out = append(out, n)
		}
		return out
	}
	m.sni = names("sni", mt.SNI)
	m.hosts = names("http_host", mt.HTTPHost)
	for j, a := range mt.ALPN {
		if a == "" {
			bad(fmt.Sprintf("alpn[%d]", j), "empty protocol name")
		}
	}
	m.alpn = mt.ALPN
	switch mt.Protocol {
	case "":
	case "tls", "http", "ssh":
		m.proto = mt.Protocol
	default:
		bad("protocol", "invalid value %q (allowed: %s)", mt.Protocol, strings.Join(protocols, ", "))
	}
	for j, s := range mt.Remote {
		p, err := decode.Prefix(s)
		if err != nil {
			bad(fmt.Sprintf("remote[%d]", j), "invalid CIDR %q: %v", s, err)
			continue
		}
		m.remote = append(m.remote, p)
	}
	return m, errs
}
