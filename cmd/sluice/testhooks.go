//go:build sluice_testhooks

package main

import (
	"context"
	"os"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// The test-stall handler exists only in the binary the integration tests
// build (internal/testbin builds with the sluice_testhooks tag): its options
// check takes Seconds, so that a test can hold a reload inside the config
// load for as long as it likes and show that signals are never blocked by
// it. Started, when set, is a file created as the stall begins.
func init() {
	registry.Register("test-stall", func() any { return new(testStall) })
}

type testStall struct {
	Seconds int    `mapstructure:"seconds"`
	Started string `mapstructure:"started"`
}

var _ chain.StreamHandler = (*testStall)(nil)

func (h *testStall) Validate() error {
	if h.Started != "" {
		if err := os.WriteFile(h.Started, nil, 0o644); err != nil {
			return err
		}
	}
	time.Sleep(time.Duration(h.Seconds) * time.Second)
	return nil
}

func (h *testStall) ServeStream(context.Context, *chain.Conn) error { return nil }
