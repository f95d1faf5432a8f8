package ratelimit

import "github.com/sluice-dev/sluice/pkg/metrics"

// TableLen is the number of addresses in the per-address tables of the
// states owned by m for listener (tests only).
func TableLen(m *metrics.Metrics, listener string) int {
	storeMu.Lock()
	defer storeMu.Unlock()
	n := 0
	for k, s := range store {
		if k.owner != m || k.listener != listener {
			continue
		}
		if s.perIP != nil {
			n += s.perIP.len()
		}
		if s.packets != nil {
			n += s.packets.len()
		}
	}
	return n
}

// States is the number of limiter states owned by m (tests only).
func States(m *metrics.Metrics) int {
	storeMu.Lock()
	defer storeMu.Unlock()
	n := 0
	for k := range store {
		if k.owner == m {
			n++
		}
	}
	return n
}
