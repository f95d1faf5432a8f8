// Package echo is the echo handler: a terminal handler that writes back
// every byte it reads. It is sluice's "hello world" and the handler the
// benchmarks measure the core with.
package echo

import (
	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// Name is the handler's name in a chain.
const Name = "echo"

func init() {
	registry.Register(Name, func() any { return new(Handler) })
}

// Handler is the echo handler. It has no options.
type Handler struct{}

var _ chain.StreamHandler = (*Handler)(nil)
