// Package registry maps handler names to their factories. Plugins register
// themselves from init; the core looks them up by the name written in a
// chain. Nothing here knows any plugin.
package registry

import (
	"fmt"
	"reflect"
	"sort"
	"sync"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/decode"
)

// Factory returns a new, zero-valued handler: a pointer to a struct whose
// exported, mapstructure-tagged fields are its options.
type Factory func() any

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a handler available under name. It panics on a duplicate
// name, which is a programming error caught by any test that imports both.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[name]; dup {
		panic(fmt.Sprintf("registry: handler %q registered twice", name))
	}
	h := f()
	if reflect.ValueOf(h).Kind() != reflect.Pointer {
		// Options are decoded into it: a value would decode into a copy.
		panic(fmt.Sprintf("registry: handler %q: the factory must return a pointer, not %T", name, h))
	}
	if !chain.IsTerminal(h) && !chain.IsMiddleware(h) && !isPacket(h) {
		panic(fmt.Sprintf("registry: handler %q implements no handler interface", name))
	}
	factories[name] = f
}

func isPacket(h any) bool {
	return chain.IsPacketTerminal(h) || chain.IsPacketMiddleware(h)
}

// Lookup returns the factory registered under name.
func Lookup(name string) (Factory, bool) {
	mu.RLock()
	defer mu.RUnlock()
	f, ok := factories[name]
	return f, ok
}

// Names lists the registered handlers, sorted, for error messages and help.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New builds the handler registered under name from its options, decoded
// strictly (unknown options and wrong types are errors), and checks them:
// its Validate method, and its ValidateNetwork method against network, the
// listener's. This is the one place a handler's options are checked, for
// `sluice validate` and for every chain sluice builds alike; Provision can
// rely on it. It binds and starts nothing. Every problem is returned, each
// naming the option it is about, and the handler only when there is none.
func New(name, network string, options map[string]any) (any, []error) {
	f, ok := Lookup(name)
	if !ok {
		return nil, []error{fmt.Errorf("unknown handler %q", name)}
	}
	h := f()
	var errs []error
	for _, fe := range decode.Into(options, h) {
		errs = append(errs, fe)
	}
	// The checks run even when an option did not decode, on what did, so
	// that one run reports every problem; a field that failed to decode
	// is at its zero value, which no check refuses on its own account.
	if v, ok := h.(chain.Validator); ok {
		errs = append(errs, decode.Split(v.Validate())...)
	}
	if nv, ok := h.(chain.NetworkValidator); ok && network != "" {
		errs = append(errs, decode.Split(nv.ValidateNetwork(network))...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return h, nil
}
