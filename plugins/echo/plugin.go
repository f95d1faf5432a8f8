// Package echo is the echo handler: a terminal handler that writes back
// every byte it reads. It is sluice's "hello world" and the handler the
// benchmarks measure the core with.
package echo

import (
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
	"github.com/sluice-dev/sluice/pkg/relay"
)

// Name is the handler's name in a chain.
const Name = "echo"

func init() {
	registry.Register(Name, func() any { return new(Handler) })
}

// Handler is the echo handler. It has no options.
type Handler struct {
	// paths counts the copy paths taken, so that a test can see bulk
	// data reach splice(2).
	paths relay.Stats
}

var _ chain.StreamHandler = (*Handler)(nil)
