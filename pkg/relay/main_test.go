package relay

import (
	"testing"

	"go.uber.org/goleak"
)

// Every copy's goroutines, watchdogs and event loops must be gone when
// the tests end.
// The loop's own tests want a pair on the loop from its first byte; the
// paths of relay_test.go set hopAfter each.
func TestMain(m *testing.M) {
	hopAfter.Store(0)
	goleak.VerifyTestMain(m)
}
