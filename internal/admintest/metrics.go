package admintest

import (
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one parsed GET /metrics.
type Scrape map[string]*dto.MetricFamily

// ScrapeMetrics is GET base/metrics, which has to answer 200 with text
// that parses.
func ScrapeMetrics(t testing.TB, base string) Scrape {
	t.Helper()
	r := Do(t, "GET", base+"/metrics")
	if r.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.Code, r.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.Body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// Value returns the sample of name whose labels are exactly labels
// ("k", "v", ...), and whether there is one.
func (s Scrape) Value(name string, labels ...string) (float64, bool) {
	fam, ok := s[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, lp := range m.GetLabel() {
			if want[lp.GetName()] != lp.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// Must is Value for a sample that has to exist.
func (s Scrape) Must(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.Value(name, labels...)
	if !ok {
		t.Fatalf("no sample %s%v in /metrics", name, labels)
	}
	return v
}
