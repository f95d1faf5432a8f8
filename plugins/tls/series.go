package tlsterm

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The expiry gauge's series are shared: while a reload builds a new
// store before the old one closes (its scope or files changed), both may
// serve a certificate with the same names. A series is dropped when the
// last store serving those names lets it go, so that a certificate no
// longer served (renewed under other names, its handler or listener
// removed) leaves no stale expiry behind to alert on.
var expirySeries = struct {
	sync.Mutex
	refs map[seriesKey]int
}{refs: map[seriesKey]int{}}

// seriesKey is one series: the gauge is the listener's own (its label
// listener set by the registerer), so the vector names the listener.
type seriesKey struct {
	vec   *prometheus.GaugeVec
	names string
}

func holdSeries(vec *prometheus.GaugeVec, names string, notAfter float64) {
	expirySeries.Lock()
	defer expirySeries.Unlock()
	expirySeries.refs[seriesKey{vec, names}]++
	vec.WithLabelValues(names).Set(notAfter)
}

func releaseSeries(vec *prometheus.GaugeVec, names string) {
	expirySeries.Lock()
	defer expirySeries.Unlock()
	k := seriesKey{vec, names}
	if expirySeries.refs[k]--; expirySeries.refs[k] <= 0 {
		delete(expirySeries.refs, k)
		vec.DeleteLabelValues(names)
	}
}
