package proxy

import "github.com/prometheus/client_golang/prometheus"

// newUpstreamErrors is sluice_upstream_errors_total; the label listener
// is set by the registerer each listener's handlers get (chain.Register).
func newUpstreamErrors() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_upstream_errors_total",
		Help: "Failed upstream connects (with tls: handshakes) or writes of the proxy handler, by listener and upstream.",
	}, []string{"upstream"})
}

// newUpstreamUp is sluice_upstream_up: 1 while an upstream's health
// checks have it up (or have not run yet), 0 while they have it down.
func newUpstreamUp() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_upstream_up",
		Help: "1 if the proxy's health checks have the upstream up (or have not run yet), 0 if down; only upstreams with health_check.",
	}, []string{"upstream"})
}

// newUpstreamActive is sluice_upstream_connections_active.
func newUpstreamActive() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_upstream_connections_active",
		Help: "Open connections (UDP: flows) from the proxy handler to each upstream, on every chain of the listener.",
	}, []string{"upstream"})
}

// newUnavailable is sluice_upstream_unavailable_total.
func newUnavailable() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sluice_upstream_unavailable_total",
		Help: "Connections the proxy handler failed at once because its health checks had every upstream down.",
	})
}
