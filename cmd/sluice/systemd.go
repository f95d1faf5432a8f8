package main

import (
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/listener"
)

// inheritSockets takes the sockets systemd passed by socket activation
// (none when sluice was not started so), before anything binds: a
// listener named like one of them serves it instead of binding its own.
// A socket no listener claims is kept, since a reload may add one, but an
// operator should hear about it: it usually means a misspelt
// FileDescriptorName=.
func inheritSockets(log hclog.Logger, cfg *config.Config) {
	names := listener.InheritSystemd()
	if len(names) == 0 {
		return
	}
	log.Info("sockets inherited from systemd", "names", strings.Join(names, ","))
	for _, n := range names {
		if !slices.ContainsFunc(cfg.Listeners, func(l config.Listener) bool { return l.Name == n }) {
			log.Warn("no listener is named like an inherited socket; it is not served", "name", n)
		}
	}
}
