package route

import "github.com/prometheus/client_golang/prometheus"

// newDecisions is sluice_route_decisions_total; the label listener is set
// by the registerer each listener's handlers get (chain.Register).
func newDecisions() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_route_decisions_total",
		Help: "Connections the route handler decided on, by listener and route: a route's name or index, default, timeout (no route matched before the timeout; the default served it) or closed (no route matched and there is no default).",
	}, []string{"route"})
}
