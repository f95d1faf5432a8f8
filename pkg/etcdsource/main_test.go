package etcdsource

import (
	"testing"

	"go.uber.org/goleak"

	_ "github.com/sluice-dev/sluice/plugins/all" // so that test documents parse as in the binary
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
