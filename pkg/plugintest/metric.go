package plugintest

import (
	"maps"

	dto "github.com/prometheus/client_model/go"
)

// Metric returns the value of the counter or gauge called name whose
// labels are exactly labels, given as name/value pairs ("listener",
// "echo", "reason", "rate"); 0 when there is no such series yet. It reads
// what /metrics would show, so a plugin's own collectors are found by
// the names an operator scrapes.
func (h *Harness) Metric(name string, labels ...string) float64 {
	h.t.Helper()
	if len(labels)%2 != 0 {
		h.t.Fatalf("Metric(%q): labels must come in name/value pairs", name)
	}
	want := map[string]string{}
	for i := 0; i < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	families, err := h.Metrics.Registry.Gather()
	if err != nil {
		h.t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if maps.Equal(got, want) {
				return value(m)
			}
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		return m.GetUntyped().GetValue()
	}
	return 0
}
