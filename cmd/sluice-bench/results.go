//go:build linux

package main

import (
	"math"
	"slices"
	"time"
)

// Results is one run of the benchmarks, as written to the JSON file and
// rendered into the report.
type Results struct {
	Machine  Machine `json:"machine"`
	Commit   string  `json:"commit,omitempty"`
	Rounds   int     `json:"rounds"`
	Duration string  `json:"duration"`
	Elapsed  string  `json:"elapsed"`
	// Retaken counts the rounds measured again because the host stole
	// too much CPU time during them (see rounds).
	Retaken int      `json:"retaken,omitempty"`
	Figures []Figure `json:"figures"`
	Notes   []string `json:"notes,omitempty"`
}

// Machine says where a run happened.
type Machine struct {
	Date    string `json:"date"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Kernel  string `json:"kernel"`
	CPU     string `json:"cpu"`
	CPUs    int    `json:"cpus"`
	LoadAvg string `json:"loadavg"`
	// Steal is the share of all CPU time the hypervisor took for other
	// guests while the run lasted ("" on a run that did not measure it).
	Steal string `json:"steal,omitempty"`
}

// Figure is one measured quantity for several targets, with the subject's
// ratios to its baselines.
type Figure struct {
	// Key is stable across runs, so that a before/after comparison can
	// match figures.
	Key     string  `json:"key"`
	Section string  `json:"section"`
	Name    string  `json:"name"`
	Unit    string  `json:"unit"`
	Lower   bool    `json:"lower_is_better"`
	Values  []Value `json:"values"`
	Ratios  []Ratio `json:"ratios"`
	// Limit is an absolute target for the subject (0: none).
	Limit float64 `json:"limit,omitempty"`
	// Rounds are the raw per-round values by target, in round order.
	Rounds map[string][]float64 `json:"rounds,omitempty"`
}

// Value is one target's median.
type Value struct {
	Target string  `json:"target"`
	Median float64 `json:"median"`
}

// Ratio is the median over rounds of subject/baseline, each round's pair
// measured back to back. When the baseline names several targets, it is
// the one with the better median.
type Ratio struct {
	Subject  string  `json:"subject"`
	Baseline string  `json:"baseline"`
	Median   float64 `json:"median"`
	// Target is the ratio the subject should stay within (0: none).
	Target float64 `json:"target,omitempty"`
}

// Met reports whether the ratio meets its target, given the direction.
func (r Ratio) Met(lower bool) bool {
	if r.Target == 0 || math.IsNaN(r.Median) {
		return true
	}
	if lower {
		return r.Median <= r.Target
	}
	return r.Median >= r.Target
}

// collector keeps every round's metrics per target.
type collector struct {
	rounds map[string][]map[string]float64
}

func newCollector() *collector { return &collector{rounds: map[string][]map[string]float64{}} }

func (c *collector) add(target string, m map[string]float64) {
	c.rounds[target] = append(c.rounds[target], m)
}

func (c *collector) median(target, metric string) float64 {
	var xs []float64
	for _, m := range c.rounds[target] {
		if v, ok := m[metric]; ok {
			xs = append(xs, v)
		}
	}
	return median(xs)
}

// ratio is the median over rounds of subject/baseline, where baseline is
// the best of baselines by median. Picking the better one per round
// instead would compare with the minimum of two noisy samples, which is
// biased low: it would charge the subject for the noise.
func (c *collector) ratio(subject string, baselines []string, metric string, lower bool, scale float64) float64 {
	if scale == 0 {
		scale = 1
	}
	base := ""
	best := math.NaN()
	for _, b := range baselines {
		v := c.median(b, metric)
		if math.IsNaN(v) {
			continue
		}
		if math.IsNaN(best) || (lower && v < best) || (!lower && v > best) {
			best, base = v, b
		}
	}
	if base == "" {
		return math.NaN()
	}
	var xs []float64
	for r, m := range c.rounds[subject] {
		s, ok := m[metric]
		if !ok || r >= len(c.rounds[base]) {
			continue
		}
		if v, ok := c.rounds[base][r][metric]; ok && v != 0 {
			xs = append(xs, s/(scale*v))
		}
	}
	return median(xs)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratioSpec asks for one ratio of a figure.
type ratioSpec struct {
	subject   string
	baselines []string
	label     string
	target    float64
	// scale multiplies the baseline (0: 1), for a floor such as "twice
	// the echo's cost".
	scale float64
}

// figure turns a collector's metric into a Figure over targets.
func figure(c *collector, key, section, name, unit, metric string, lower bool, targets []string, ratios ...ratioSpec) Figure {
	f := Figure{Key: key, Section: section, Name: name, Unit: unit, Lower: lower}
	f.Rounds = map[string][]float64{}
	for _, t := range targets {
		if v := c.median(t, metric); !math.IsNaN(v) {
			f.Values = append(f.Values, Value{Target: t, Median: v})
		}
		for _, m := range c.rounds[t] {
			if v, ok := m[metric]; ok {
				f.Rounds[t] = append(f.Rounds[t], v)
			}
		}
	}
	for _, r := range ratios {
		m := c.ratio(r.subject, r.baselines, metric, lower, r.scale)
		if math.IsNaN(m) {
			continue // a baseline that was not measured (HAProxy missing)
		}
		f.Ratios = append(f.Ratios, Ratio{Subject: r.subject, Baseline: r.label, Median: m, Target: r.target})
	}
	return f
}

// Per-scenario metrics, from what the client saw and the server's CPU
// time (negative: not measured).

func throughputMetrics(r loadResult, cpu time.Duration) map[string]float64 {
	m := map[string]float64{"MBps": r.ops / r.elapsed.Seconds() / 1e6}
	if cpu >= 0 && r.ops > 0 {
		m["cpu_ms_per_GB"] = float64(cpu) / 1e6 / (r.ops / 1e9)
	}
	return m
}

func pingPongMetrics(r loadResult, cpu time.Duration) map[string]float64 {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	m := map[string]float64{
		"rate": r.ops / r.elapsed.Seconds(),
		"p50":  us(percentile(r.lat, 0.50)),
		"p99":  us(percentile(r.lat, 0.99)),
		"p999": us(percentile(r.lat, 0.999)),
	}
	if cpu >= 0 && r.ops > 0 {
		m["cpu_us_per_op"] = us(cpu) / r.ops
	}
	return m
}

func connRateMetrics(r loadResult, cpu time.Duration) map[string]float64 {
	m := map[string]float64{"rate": r.ops / r.elapsed.Seconds()}
	if cpu >= 0 && r.ops > 0 {
		m["cpu_us_per_conn"] = float64(cpu) / 1e3 / r.ops
	}
	return m
}
