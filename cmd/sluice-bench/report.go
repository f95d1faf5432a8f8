//go:build linux

package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
)

//go:embed report.md.tmpl
var reportTemplate string

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	in := fs.String("in", "docs/benchmarks.json", "results JSON written by run")
	out := fs.String("out", "docs/benchmarks", "report path without extension")
	before := fs.String("before", "", "an earlier results JSON, shown as the 'before' column")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := readResults(*in)
	if err != nil {
		return err
	}
	return writeReport(res, *out, *before)
}

func readResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// writeReport writes out.json (unless res came from it), out.md and
// out.png.
func writeReport(res *Results, out, beforePath string) error {
	if res.Commit == "" {
		if b, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
			res.Commit = strings.TrimSpace(string(b))
		}
	}
	var before *Results
	if beforePath != "" {
		var err error
		if before, err = readResults(beforePath); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out+".json", append(js, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeChart(res, before, out+".png"); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	md, err := renderMarkdown(res, before, filepath.Base(out)+".png", beforePath)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out+".md", md, 0o644); err != nil {
		return err
	}
	logf("wrote %s.md, %s.json and %s.png", out, out, out)
	return nil
}

// section groups figures for one table.
type section struct {
	Title   string
	Targets []string
	Rows    []row
}

type row struct {
	Name, Unit string
	Cells      []string
	Ratios     string
	Before     string
}

func renderMarkdown(res, before *Results, png, beforePath string) ([]byte, error) {
	var secs []*section
	bySec := map[string]*section{}
	for _, f := range res.Figures {
		s := bySec[f.Section]
		if s == nil {
			s = &section{Title: f.Section}
			bySec[f.Section] = s
			secs = append(secs, s)
		}
		for _, v := range f.Values {
			if !contains(s.Targets, v.Target) {
				s.Targets = append(s.Targets, v.Target)
			}
		}
	}
	for _, f := range res.Figures {
		s := bySec[f.Section]
		r := row{Name: f.Name, Unit: f.Unit}
		for _, t := range s.Targets {
			r.Cells = append(r.Cells, fmtValue(f, t))
		}
		r.Ratios = fmtRatios(f, f.Ratios)
		if before != nil {
			if bf, ok := findFigure(before, f.Key); ok {
				r.Before = fmtRatios(bf, bf.Ratios)
			} else {
				r.Before = "—"
			}
		}
		s.Rows = append(s.Rows, r)
	}
	data := map[string]any{
		"R":          res,
		"Sections":   secs,
		"PNG":        png,
		"Before":     before,
		"BeforePath": beforePath,
	}
	t, err := template.New("report").Funcs(template.FuncMap{
		"join": strings.Join,
	}).Parse(reportTemplate)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fmtValue(f Figure, target string) string {
	for _, v := range f.Values {
		if v.Target == target {
			return fmtNum(v.Median)
		}
	}
	return "—"
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "—"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func fmtRatios(f Figure, rs []Ratio) string {
	var parts []string
	for _, r := range rs {
		s := fmt.Sprintf("**%.2f×** vs %s", r.Median, r.Baseline)
		if !strings.HasPrefix(r.Subject, "sluice") {
			// A baseline measured against another: say whose ratio.
			s = r.Subject + ": " + s
		}
		if r.Target != 0 {
			mark := "✅"
			if !r.Met(f.Lower) {
				mark = "❌"
			}
			op := "≤"
			if !f.Lower {
				op = "≥"
			}
			s += fmt.Sprintf(" (target %s %.2f× %s)", op, r.Target, mark)
		}
		parts = append(parts, s)
	}
	if f.Limit != 0 {
		for _, v := range f.Values {
			if v.Target == sluiceT {
				mark := "✅"
				if v.Median > f.Limit {
					mark = "❌"
				}
				parts = append(parts, fmt.Sprintf("sluice %.1f %s (limit ≤ %.0f %s)", v.Median, mark, f.Limit, f.Unit))
			}
		}
	}
	return strings.Join(parts, "<br>")
}

func findFigure(r *Results, key string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.Key == key {
			return f, true
		}
	}
	return Figure{}, false
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
