package proxyprotocol

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/pkg/decode"
)

// Validate checks the options and parses trusted. Every problem is
// reported under its key.
func (h *Handler) Validate() error {
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &decode.FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	h.prefixes = h.prefixes[:0]
	for i, s := range h.Trusted {
		p, err := decode.Prefix(s)
		if err != nil {
			add(fmt.Sprintf("trusted[%d]", i), "%q is not a CIDR (10.0.0.0/8, fd00::/8) or an address", s)
			continue
		}
		h.prefixes = append(h.prefixes, p)
	}
	if h.Timeout < 0 {
		add("timeout", "must be > 0 (omit it for the default, 5s)")
	}
	return errors.Join(errs...)
}

// ValidateNetwork requires trusted on IP listeners, where anyone could
// otherwise claim any address, and refuses UDP listeners, whose PROXY v2
// datagrams sluice does not read.
func (h *Handler) ValidateNetwork(network string) error {
	switch {
	case strings.HasPrefix(network, "udp"):
		return &decode.FieldError{Msg: fmt.Sprintf("the PROXY protocol is read on stream listeners (tcp, unix), not on %s listeners", network)}
	case network != "unix" && len(h.Trusted) == 0:
		return &decode.FieldError{Key: "trusted", Msg: "required on a " + network + " listener: the CIDRs of the load balancers allowed to send a PROXY header, e.g. [\"10.0.0.0/8\"]"}
	}
	return nil
}
