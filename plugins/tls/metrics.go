package tlsterm

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/pkg/chain"
)

// Handshake results: the label result of sluice_tls_handshakes_total.
const (
	resultOK      = "ok"
	resultError   = "error"
	resultTimeout = "timeout"
)

// handshakeMetrics are one listener's series; the label listener is set
// by the registerer each listener's handlers get (chain.Register).
type handshakeMetrics struct {
	ok, failed, timedOut prometheus.Counter
	duration             prometheus.Observer
	expiry               *prometheus.GaugeVec
}

func registerMetrics(r prometheus.Registerer) (handshakeMetrics, error) {
	var m handshakeMetrics
	total, err := chain.Register(r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_tls_handshakes_total",
		Help: "TLS handshakes the tls handler completed or failed, by listener and result (ok, error, timeout).",
	}, []string{"result"}))
	if err != nil {
		return m, err
	}
	m.ok = total.WithLabelValues(resultOK)
	m.failed = total.WithLabelValues(resultError)
	m.timedOut = total.WithLabelValues(resultTimeout)
	d, err := chain.Register(r, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "sluice_tls_handshake_duration_seconds",
		Help: "Duration of the tls handler's handshakes, successful or not, by listener.",
		// From a resumed handshake on loopback to a slow client's
		// full one over a long path.
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}))
	if err != nil {
		return m, err
	}
	m.duration = d
	m.expiry, err = chain.Register(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_tls_certificate_expiry_timestamp_seconds",
		Help: "When each certificate the tls handler serves expires (its notAfter, Unix time), by listener and the certificate's names.",
	}, []string{"names"}))
	return m, err
}
