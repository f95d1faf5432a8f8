package ratelimit

import "github.com/prometheus/client_golang/prometheus"

// newRejected is sluice_ratelimit_rejected_total; the label listener is
// set by the registerer each listener's handlers get (chain.Register).
func newRejected() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_ratelimit_rejected_total",
		Help: "Connections or datagrams refused by the ratelimit handler, by listener and reason.",
	}, []string{"reason"})
}
