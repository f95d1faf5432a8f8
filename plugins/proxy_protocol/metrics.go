package proxyprotocol

import "github.com/prometheus/client_golang/prometheus"

// newRejected is sluice_proxy_protocol_rejected_total; the label listener
// is set by the registerer each listener's handlers get (chain.Register).
func newRejected() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_proxy_protocol_rejected_total",
		Help: "Connections closed by the proxy_protocol handler before the rest of the chain saw them, by listener and reason.",
	}, []string{"reason"})
}
