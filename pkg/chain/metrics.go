package chain

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers a handler's collector c on r and returns it. When an
// equal collector is registered already — by the same listener's previous
// chain, since a reload builds new handlers, or by another listener's
// handler of the same kind — it returns that one instead, so that a series
// keeps counting across reloads and the process exposes each metric once.
// A nil r (a test that does not look at metrics) leaves c unregistered.
//
// The r handed to a handler in ProvisionContext.Metrics already sets the
// label listener, so c declares only its own labels.
func Register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	if r == nil {
		return c, nil
	}
	err := r.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	var zero C
	return zero, fmt.Errorf("registering metrics: %w", err)
}
