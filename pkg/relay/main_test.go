package relay

import (
	"testing"

	"go.uber.org/goleak"
)

// Every copy's goroutines, watchdogs and event loops must be gone when
// the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
