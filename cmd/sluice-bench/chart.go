//go:build linux

package main

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// writeChart draws every ratio as a horizontal bar of relative cost: 1 is
// the baseline, right of 1 is worse. Ratios of higher-is-better figures
// (rates, throughput) are inverted so that every bar reads the same way.
// With a before run, its bars stand beside the current ones.
func writeChart(res, before *Results, path string) error {
	type bar struct {
		label       string
		now, before float64
	}
	var bars []bar
	for _, f := range res.Figures {
		for _, r := range f.Ratios {
			b := bar{label: chartLabel(f, r), now: cost(f, r.Median), before: math.NaN()}
			if before != nil {
				if bf, ok := findFigure(before, f.Key); ok {
					for _, br := range bf.Ratios {
						if br.Baseline == r.Baseline {
							b.before = cost(bf, br.Median)
						}
					}
				}
			}
			bars = append(bars, b)
		}
	}
	if len(bars) == 0 {
		return nil
	}
	// Top to bottom in report order: the Y axis grows upwards. Bars are
	// cut at xMax, and every bar carries its value, so a far outlier
	// neither hides the others nor its own size.
	const xMax = 2.5
	n := len(bars)
	labels := make([]string, n)
	now := make(plotter.Values, n)
	was := make(plotter.Values, n)
	var nowText, wasText plotter.XYLabels
	for i, b := range bars {
		j := n - 1 - i
		labels[j] = "   " + b.label // room for the font's overhang at the left edge
		now[j] = math.Min(clampNaN(b.now), xMax)
		was[j] = math.Min(clampNaN(b.before), xMax)
		nowText.XYs = append(nowText.XYs, plotter.XY{X: now[j] + 0.02, Y: float64(j)})
		nowText.Labels = append(nowText.Labels, fmtRatio(b.now))
		wasText.XYs = append(wasText.XYs, plotter.XY{X: was[j] + 0.02, Y: float64(j)})
		wasText.Labels = append(wasText.Labels, fmtRatio(b.before))
	}

	p := plot.New()
	p.Title.Text = "sluice relative to its baselines (1 = baseline, lower is better)"
	p.X.Label.Text = "relative cost (rates and throughput inverted)"
	p.X.Min = 0
	p.X.Max = xMax + 0.3
	p.Add(plotter.NewGrid())

	h := vg.Points(9)
	barNow, err := plotter.NewBarChart(now, h)
	if err != nil {
		return err
	}
	barNow.Horizontal = true
	barNow.Color = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	barNow.LineStyle.Width = 0
	if before != nil {
		barWas, err := plotter.NewBarChart(was, h)
		if err != nil {
			return err
		}
		barWas.Horizontal = true
		barWas.Color = color.RGBA{R: 0xbb, G: 0xbb, B: 0xbb, A: 0xff}
		barWas.LineStyle.Width = 0
		barWas.Offset = h / 2
		barNow.Offset = -h / 2
		p.Add(barWas)
		p.Legend.Add("before", barWas)
		p.Legend.Add("now", barNow)
		p.Legend.Top = false
		p.Legend.Left = false
		p.Legend.XOffs = -vg.Points(12)
		if err := addLabels(p, wasText, 0.25); err != nil {
			return err
		}
		if err := addLabels(p, nowText, -0.25); err != nil {
			return err
		}
	} else if err := addLabels(p, nowText, 0); err != nil {
		return err
	}
	p.Add(barNow)
	one, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.5}, {X: 1, Y: float64(n) - 0.5}})
	if err != nil {
		return err
	}
	one.Color = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	one.Width = vg.Points(1.5)
	p.Add(one)
	p.NominalY(labels...)
	return p.Save(10*vg.Inch, vg.Length(1.5+0.3*float64(n))*vg.Inch, path)
}

// addLabels writes each bar's value beside it, dy bars up or down.
func addLabels(p *plot.Plot, l plotter.XYLabels, dy float64) error {
	for i := range l.XYs {
		l.XYs[i].Y += dy
	}
	labels, err := plotter.NewLabels(l)
	if err != nil {
		return err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Font.Size = vg.Points(7)
		labels.TextStyle[i].YAlign = -0.5
	}
	p.Add(labels)
	return nil
}

func fmtRatio(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", v)
}

// cost turns a ratio into relative cost: inverted when higher is better.
func cost(f Figure, ratio float64) float64 {
	if f.Lower || ratio == 0 {
		return ratio
	}
	return 1 / ratio
}

func clampNaN(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// shortSections name a figure's section in a chart label, by its key
// without the last part, or else by the first two parts; other keys use
// their parts but the last.
var shortSections = map[string]string{
	"echo.throughput":   "echo bulk",
	"echo.pingpong":     "echo ping-pong",
	"echo.connrate":     "echo conn",
	"idle.rss":          "idle",
	"proxy.throughput":  "proxy bulk",
	"proxy.pingpong":    "proxy ping-pong",
	"proxy.connrate":    "proxy conn",
	"pp.connrate":       "PROXY-protocol conn",
	"pp.pingpong":       "PROXY-protocol ping-pong",
	"route.connrate":    "route conn",
	"route.pingpong":    "route ping-pong",
	"tls.bulk":          "TLS bulk",
	"tls.ecdsa.full":    "TLS ECDSA full",
	"tls.ecdsa.resumed": "TLS ECDSA resumed",
	"tls.rsa.full":      "TLS RSA full",
	"tls.rsa.resumed":   "TLS RSA resumed",
	"reload.signal":     "reload by SIGHUP",
	"reload.file":       "reload by save",
}

// shortMetrics name a figure's metric in a chart label, by the last part
// of its key.
var shortMetrics = map[string]string{
	"rate": "rate", "cpu": "CPU", "p50": "p50", "p99": "p99", "p999": "p99.9",
	"rss": "RSS/conn", "signal": "latency", "file": "latency",
	"per_cpu": "per CPU-s",
}

// shortBaselines name a ratio's baseline in a chart label; others lose
// what they say in parentheses.
var shortBaselines = strings.NewReplacer(
	"better ", "", "cheaper ", "", "leaner ", "",
	"the -compare build", "-compare",
	"plain sluice proxy", "plain proxy",
	"2 × sluice splice echo (floor)", "2 × splice echo",
	"the better of HAProxy and nginx", "HAProxy/nginx",
	"HAProxy accept-proxy + send-proxy-v2", "HAProxy",
	"HAProxy req.ssl_sni", "HAProxy",
	"Go net proxy (a goroutine per connection)", "go-proxy",
)

// maxLabel bounds a chart label: the plot gets the width the longest
// label leaves it.
const maxLabel = 56

func chartLabel(f Figure, r Ratio) string {
	parts := strings.Split(f.Key, ".")
	sec, name := strings.Join(parts[:max(len(parts)-1, 1)], " "), f.Name
	if len(parts) >= 2 {
		if s, ok := shortSections[strings.Join(parts[:len(parts)-1], ".")]; ok {
			sec = s
		} else if s, ok := shortSections[parts[0]+"."+parts[1]]; ok {
			sec = s
		}
		if m, ok := shortMetrics[parts[len(parts)-1]]; ok {
			name = m
		}
	}
	if name == "CPU" {
		name = "CPU/" + strings.TrimPrefix(strings.TrimPrefix(f.Unit, "ms/"), "µs/")
	}
	base := shortBaselines.Replace(r.Baseline)
	if i := strings.Index(base, " ("); i > 0 {
		base = base[:i]
	}
	label := fmt.Sprintf("%s %s vs %s", sec, name, base)
	if r.Subject != "" && !strings.HasPrefix(r.Subject, "sluice") {
		// A baseline measured against another (go-epoll-proxy).
		label = r.Subject + ": " + label
	}
	if !f.Lower {
		label += " (1/x)"
	}
	if n := []rune(label); len(n) > maxLabel {
		label = string(n[:maxLabel-1]) + "…"
	}
	return label
}
