package proxy

import (
	"errors"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// provisioned builds a proxy to upstream for a listener on network the way
// sluice does: options checked by registry.New, then Provision.
func provisioned(t *testing.T, network, upstream string) *Handler {
	t.Helper()
	built, errs := registry.New(Name, network, map[string]any{"upstreams": []any{upstream}})
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	h := built.(*Handler)
	if err := h.Provision(chain.ProvisionContext{Listener: "t", Network: network, Logger: hclog.NewNullLogger()}); err != nil {
		t.Fatal(err)
	}
	return h
}
