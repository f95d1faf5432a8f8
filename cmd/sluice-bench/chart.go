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
		for i, r := range f.Ratios {
			b := bar{label: chartLabel(f, r), now: cost(f, r.Median), before: math.NaN()}
			if before != nil {
				if bf, ok := findFigure(before, f.Key); ok && i < len(bf.Ratios) {
					b.before = cost(bf, bf.Ratios[i].Median)
				}
			}
			bars = append(bars, b)
		}
	}
	if len(bars) == 0 {
		return nil
	}
	// Top to bottom in report order: the Y axis grows upwards.
	n := len(bars)
	labels := make([]string, n)
	now := make(plotter.Values, n)
	was := make(plotter.Values, n)
	maxX := 1.2
	for i, b := range bars {
		j := n - 1 - i
		labels[j] = b.label
		now[j] = clampNaN(b.now)
		was[j] = clampNaN(b.before)
		maxX = math.Max(maxX, math.Max(now[j], was[j]))
	}

	p := plot.New()
	p.Title.Text = "sluice relative to its baselines (1 = baseline, lower is better)"
	p.X.Label.Text = "relative cost (rates and throughput inverted)"
	p.X.Min = 0
	p.X.Max = math.Min(maxX*1.05, 5)
	p.Add(plotter.NewGrid())

	h := vg.Points(10)
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
		p.Legend.Top = true
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
	return p.Save(10*vg.Inch, vg.Length(1.5+0.28*float64(n))*vg.Inch, path)
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

var shortSections = map[string]string{
	"echo.throughput":  "echo bulk",
	"echo.pingpong":    "echo ping-pong",
	"echo.connrate":    "echo conn rate",
	"idle.rss":         "idle",
	"proxy.throughput": "proxy bulk",
	"proxy.pingpong":   "proxy ping-pong",
	"reload.latency":   "reload",
}

func chartLabel(f Figure, r Ratio) string {
	parts := strings.SplitN(f.Key, ".", 3)
	sec := f.Section
	if len(parts) >= 2 {
		if s, ok := shortSections[parts[0]+"."+parts[1]]; ok {
			sec = s
		}
	}
	name := f.Name
	if sec == "reload" {
		name = "latency"
	}
	label := fmt.Sprintf("%s: %s vs %s", sec, name, r.Baseline)
	if !f.Lower {
		label += " (1/x)"
	}
	return label
}
