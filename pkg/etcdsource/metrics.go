package etcdsource

import "github.com/prometheus/client_golang/prometheus"

// Register adds sluice_config_source_up to reg: 1 while sluice is in
// touch with etcd, 0 while it serves the running config without it. A
// file source has no such metric: there is nothing to lose touch with.
func (s *Source) Register(reg prometheus.Registerer) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_config_source_up",
		Help: "1 while the config source (etcd) is reachable, 0 while sluice runs on the config it has without it.",
	}, func() float64 {
		if s.Connected() {
			return 1
		}
		return 0
	}))
}
