// Package metrics holds the collectors of sluice's core: connections,
// bytes, reloads. One Metrics value is created per process and handed to
// the supervisor, which gives handlers its registry (wrapped with their
// listener's label) through chain.ProvisionContext, so that a plugin
// registers and owns its own metrics; the admin endpoint serves the
// registry. Nothing here is global, so tests can make their own.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the set of sluice's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	ConnectionsTotal      *prometheus.CounterVec // listener
	ConnectionsActive     *prometheus.GaugeVec   // listener
	RetiredConnections    *prometheus.GaugeVec   // listener
	BytesTotal            *prometheus.CounterVec // listener, direction
	DescriptorShortage    *prometheus.CounterVec // listener
	ConfigReloads         *prometheus.CounterVec // result
	LastReloadSuccessTime prometheus.Gauge
}

// New creates the collectors and registers them, with the Go and process
// collectors, on a new registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		ConnectionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_connections_total",
			Help: "Connections accepted (UDP: flows started), by listener.",
		}, []string{"listener"}),
		ConnectionsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_connections_active",
			Help: "Connections (UDP: flows) open now, by listener.",
		}, []string{"listener"}),
		RetiredConnections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_retired_connections",
			Help: "Open connections (UDP: flows) still on a chain a reload replaced, or on a listener a reload removed, by listener; part of sluice_connections_active.",
		}, []string{"listener"}),
		BytesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_bytes_total",
			Help: "Bytes moved, by listener and direction: in is client to sluice, out is sluice to client.",
		}, []string{"listener", "direction"}),
		DescriptorShortage: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_descriptor_shortage_total",
			Help: "Connections or UDP flows that failed because sluice was short of file descriptors (its UDP budget spent, or the process limit near), by listener.",
		}, []string{"listener"}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_config_reloads_total",
			Help: "Config reloads, by result (success, failure).",
		}, []string{"result"}),
		LastReloadSuccessTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful config load or reload.",
		}),
	}
	m.Registry.MustRegister(
		m.ConnectionsTotal, m.ConnectionsActive, m.RetiredConnections, m.BytesTotal,
		m.DescriptorShortage, m.ConfigReloads, m.LastReloadSuccessTime,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Both results exist from the start, so that a dashboard's rate() over
	// failures has a series before the first failure.
	m.ConfigReloads.WithLabelValues("success")
	m.ConfigReloads.WithLabelValues("failure")
	return m
}

// Listener holds one listener's per-connection collectors, resolved once
// so that the per-connection path does no label lookups.
type Listener struct {
	Total    prometheus.Counter
	Active   prometheus.Gauge
	Retired  prometheus.Gauge
	BytesIn  prometheus.Counter
	BytesOut prometheus.Counter
	// Shortage counts connections and flows failed for want of
	// descriptors.
	Shortage prometheus.Counter
}

// ForListener resolves the per-listener collectors for name.
func (m *Metrics) ForListener(name string) *Listener {
	return &Listener{
		Total:    m.ConnectionsTotal.WithLabelValues(name),
		Active:   m.ConnectionsActive.WithLabelValues(name),
		Retired:  m.RetiredConnections.WithLabelValues(name),
		BytesIn:  m.BytesTotal.WithLabelValues(name, "in"),
		BytesOut: m.BytesTotal.WithLabelValues(name, "out"),
		Shortage: m.DescriptorShortage.WithLabelValues(name),
	}
}

// CountLogDrops adds sluice_log_lines_dropped_total, read from dropped:
// log lines lost because the log output did not take them in time.
func (m *Metrics) CountLogDrops(dropped func() uint64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "sluice_log_lines_dropped_total",
		Help: "Log lines dropped because the log output (stderr) did not take them: 1 MiB of lines waited already, or the output was gone.",
	}, func() float64 { return float64(dropped()) }))
}
