// Package admintest has the helpers that the admin endpoint's own tests
// (pkg/admin) and the end-to-end tests of the real binary (internal/e2e)
// share: HTTP requests to the endpoint, /status, a parsed /metrics, a
// known echo workload and the metric checks it must pass, and config
// texts. Keeping one copy means both suites assert the same contract the
// same way.
package admintest

import "time"

// WaitBound is how long a helper waits for something that happens "soon"
// (a connection's end reaching the gauges, an HTTP answer): generous,
// because the test machine is small and shared.
const WaitBound = 15 * time.Second
