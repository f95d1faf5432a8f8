package proxy

import "github.com/prometheus/client_golang/prometheus"

// newUpstreamErrors is sluice_upstream_errors_total; the label listener
// is set by the registerer each listener's handlers get (chain.Register).
func newUpstreamErrors() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_upstream_errors_total",
		Help: "Failed upstream connects or writes of the proxy handler, by listener and upstream.",
	}, []string{"upstream"})
}
