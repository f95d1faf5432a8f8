package admintest

import (
	"fmt"
	"strings"

	"github.com/sluice-dev/sluice/pkg/admin"
)

// ListenerSpec is one listener of a test config; every chain is echo.
type ListenerSpec struct{ Name, Network, Address string }

// Listener is a ListenerSpec, short so that a config reads on one line.
func Listener(name, network, address string) ListenerSpec {
	return ListenerSpec{Name: name, Network: network, Address: address}
}

// ConfigYAML is a config with the admin endpoint on adminAddr, a 5s drain
// and the listeners ls, each an echo chain.
func ConfigYAML(adminAddr string, ls ...ListenerSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: debug\nadmin:\n  address: %q\nshutdown:\n  drain_timeout: 5s\nlisteners:\n", adminAddr)
	for _, l := range ls {
		fmt.Fprintf(&b, "  - name: %s\n    network: %s\n    address: %q\n    chain:\n      - handler: echo\n", l.Name, l.Network, l.Address)
	}
	return b.String()
}

// ListenerAddr is the address /status reports for the listener name, and
// whether it reports one.
func ListenerAddr(st admin.Status, name string) (string, bool) {
	for _, l := range st.Listeners {
		if l.Name == name {
			return l.Address, true
		}
	}
	return "", false
}
