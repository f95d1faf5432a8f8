package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// IsDatagram reports whether network is a UDP network.
func IsDatagram(network string) bool {
	return network == "udp" || network == "udp4" || network == "udp6"
}

// ValidateChain checks a chain for a listener of the given network (""
// when it is unknown: stream is assumed and network-specific checks are
// skipped): every handler exists and accepts its options, and exactly the
// last one is terminal. It returns every problem, each a *PathError whose
// key is relative to where the chain is written, e.g.
// `chain[0].handler: unknown handler "x" (known: ...)` or
// `chain[1] (ratelimit): burst: must be > 0`. Like New it binds nothing.
func ValidateChain(network string, specs []Spec) []error {
	stream := !IsDatagram(network)
	if len(specs) == 0 {
		return []error{&PathError{Key: "chain", Msg: fmt.Sprintf("required: at least one handler, ending in a terminal one (%s)", strings.Join(Terminals(stream), ", "))}}
	}
	var errs []error
	add := func(key, format string, args ...any) {
		errs = append(errs, &PathError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for j, s := range specs {
		hkey := fmt.Sprintf("chain[%d]", j)
		if s.Handler == "" {
			add(hkey+".handler", "required (known: %s)", strings.Join(Names(), ", "))
			continue
		}
		f, ok := Lookup(s.Handler)
		if !ok {
			add(hkey+".handler", "unknown handler %q (known: %s)", s.Handler, strings.Join(Names(), ", "))
			continue
		}
		_, herrs := New(s.Handler, network, s.Options)
		for _, err := range herrs {
			var pe *PathError
			if errors.As(err, &pe) {
				// A nested chain's problem: it names its own place.
				add(hkey+"."+pe.Key, "%s", pe.Msg)
				continue
			}
			add(fmt.Sprintf("%s (%s)", hkey, s.Handler), "%v", err)
		}
		last := j == len(specs)-1
		terminal, middle := kinds(f(), stream)
		switch {
		case !terminal && !middle:
			kind := "stream"
			if !stream {
				kind = "udp"
			}
			if network != "" {
				kind = network
			}
			add(hkey+".handler", "handler %q does not work on %s listeners", s.Handler, kind)
		case last && !terminal:
			add(hkey+".handler", "the chain must end in a terminal handler, and %q is not one (terminal: %s)", s.Handler, strings.Join(Terminals(stream), ", "))
		case !last && !middle:
			add(hkey+".handler", "%q is a terminal handler and must be the last of the chain", s.Handler)
		}
	}
	return errs
}

func kinds(h any, stream bool) (terminal, middle bool) {
	if stream {
		return chain.IsTerminal(h), chain.IsMiddleware(h)
	}
	return chain.IsPacketTerminal(h), chain.IsPacketMiddleware(h)
}

// Terminals lists the registered handlers that can end a stream chain
// (stream) or a datagram one.
func Terminals(stream bool) []string {
	var out []string
	for _, name := range Names() {
		f, _ := Lookup(name)
		if t, _ := kinds(f(), stream); t {
			out = append(out, name)
		}
	}
	return out
}
