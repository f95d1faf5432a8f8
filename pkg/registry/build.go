package registry

import (
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Build makes a chain's handlers: each one decoded and checked (New) and
// provisioned with pctx, in order. On a failure it closes what it made
// and returns an error naming the handler's place relative to the chain,
// e.g. "chain[1] (proxy): ...". The caller compiles the handlers (for a
// stream or a datagram listener) and closes them (chain.CloseAll) when
// the chain is retired.
func Build(pctx chain.ProvisionContext, specs []Spec) ([]any, error) {
	handlers := make([]any, 0, len(specs))
	for j, s := range specs {
		where := fmt.Sprintf("chain[%d] (%s)", j, s.Handler)
		h, errs := New(s.Handler, pctx.Network, s.Options)
		if len(errs) > 0 {
			_ = chain.CloseAll(handlers)
			return nil, fmt.Errorf("%s: %w", where, errors.Join(errs...))
		}
		if p, ok := h.(chain.Provisioner); ok {
			if err := p.Provision(pctx); err != nil {
				_ = chain.CloseAll(handlers)
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		handlers = append(handlers, h)
	}
	return handlers, nil
}

// BuildStream is Build for a stream chain, compiled: the one callable
// handler and the handlers it is made of, to close when it is retired.
func BuildStream(pctx chain.ProvisionContext, specs []Spec) (chain.StreamHandler, []any, error) {
	handlers, err := Build(pctx, specs)
	if err != nil {
		return nil, nil, err
	}
	h, err := chain.Compile(handlers)
	if err != nil {
		_ = chain.CloseAll(handlers)
		return nil, nil, fmt.Errorf("chain: %w", err)
	}
	return h, handlers, nil
}
