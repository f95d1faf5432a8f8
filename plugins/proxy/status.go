package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-dev/sluice/pkg/chain"
)

var _ chain.StatusReporter = (*Handler)(nil)

// Status is the proxy's part of /status.
type Status struct {
	Upstreams []UpstreamStatus `json:"upstreams"`
}

// UpstreamStatus is one upstream in /status.
type UpstreamStatus struct {
	URL string `json:"url"`
	// TLS is true when the proxy speaks TLS to it (the tls option).
	TLS bool `json:"tls,omitempty"`
	// State is up or down by the health checks, unchecked before the
	// first check or without health_check.
	State string `json:"state"`
	// LastCheck and LastError are the last health check's time and
	// failure ("" when it passed).
	LastCheck time.Time `json:"last_check,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// SkippedUntil is set while a failed connect (fail_timeout) has the
	// upstream skipped.
	SkippedUntil time.Time `json:"skipped_until,omitzero"`
	// Connections is the open connections (UDP: flows) to it, on every
	// chain of the listener.
	Connections int64 `json:"connections"`
}

// Status reports every upstream's state.
func (h *Handler) Status() any {
	st := Status{Upstreams: make([]UpstreamStatus, 0, len(h.pool.ups))}
	now := time.Now().UnixNano()
	for _, u := range h.pool.ups {
		us := UpstreamStatus{URL: u.url, TLS: u.tls != nil, State: StateUnchecked, Connections: gaugeValue(u.gauge)}
		if u.check != nil {
			cs := u.check.status()
			us.State, us.LastCheck, us.LastError = cs.State, cs.LastCheck, cs.LastError
		}
		if d := u.downUntil.Load(); d > now {
			us.SkippedUntil = time.Unix(0, d)
		}
		st.Upstreams = append(st.Upstreams, us)
	}
	return st
}

// gaugeValue reads a Prometheus gauge, shared by the chains of a reload,
// so that /status and /metrics agree.
func gaugeValue(g prometheus.Gauge) int64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return 0
	}
	return int64(m.GetGauge().GetValue())
}
