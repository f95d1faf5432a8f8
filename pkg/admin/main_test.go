package admin_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every server, shutdown and connection goroutine must have ended once
// the tests' cleanups ran. The tests that run the real binary against
// the endpoint live with the other end-to-end tests, in internal/e2e.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
