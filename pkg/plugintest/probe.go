package plugintest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// WrapProbe is the name under which RegisterWrapProbe registers a
// terminal handler for middleware tests. It reports, through
// ProbeWrapped, whether the connection reached it still unwrapped (so a
// terminal could splice), counts one byte in and two out, and annotates
// probe=seen, so that a test can recognise the terminal's counts and
// annotations in a log record.
const WrapProbe = "wrap-probe"

var (
	probeOnce sync.Once
	probeSeen = make(chan bool, 16)
)

type wrapProbe struct{}

func (*wrapProbe) ServeStream(_ context.Context, c *chain.Conn) error {
	c.AddIn(1)
	c.AddOut(2)
	c.Annotate("probe", "early")
	c.Annotate("probe", "seen")
	probeSeen <- c.Wrapped()
	return nil
}

// RegisterWrapProbe registers the WrapProbe handler, once per test binary.
// It is not registered by default so that other tests see only the real
// handlers in the registry.
func RegisterWrapProbe() {
	probeOnce.Do(func() {
		registry.Register(WrapProbe, func() any { return new(wrapProbe) })
	})
}

// ProbeWrapped waits for the next connection the probe served and reports
// whether a middleware had wrapped it.
func ProbeWrapped(t testing.TB) bool {
	t.Helper()
	select {
	case w := <-probeSeen:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the wrap probe never ran")
		return false
	}
}
