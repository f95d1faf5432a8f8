//go:build linux

package main

import (
	"os"
	"slices"
	"testing"
	"unicode/utf8"
)

// TestChartLabels: every label of the committed report's chart is short
// (the plot gets the width the longest label leaves it: section names
// as labels once squeezed every bar to nothing) and tells its bar apart.
func TestChartLabels(t *testing.T) {
	res, err := readResults("../../docs/benchmarks.json")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, f := range res.Figures {
		for _, r := range f.Ratios {
			l := chartLabel(f, r)
			if n := utf8.RuneCountInString(l); n > maxLabel || l[len(l)-len("…"):] == "…" {
				t.Errorf("%s vs %s: label %q is %d characters, cut at %d", f.Key, r.Baseline, l, n, maxLabel)
			}
			if k, ok := seen[l]; ok {
				t.Errorf("label %q for both %s and %s vs %s", l, k, f.Key, r.Baseline)
			}
			seen[l] = f.Key + " vs " + r.Baseline
		}
	}
	if len(seen) < 40 {
		t.Errorf("%d labels: the report has lost figures", len(seen))
	}
}

// TestUnitEnvironment: the bench runs sluice with the environment its
// systemd unit sets, read from the unit the package installs.
func TestUnitEnvironment(t *testing.T) {
	b, err := os.ReadFile("../../" + unitFile)
	if err != nil {
		t.Fatal(err)
	}
	env := unitEnvironment(string(b))
	if !slices.Contains(env, "GODEBUG=schedtrace=2147483647") {
		t.Errorf("the unit's environment: %q, want GODEBUG=schedtrace=2147483647 in it", env)
	}
	if got := unitEnvironment("[Service]\nEnvironment=A=1 B=2\n# Environment=C=3\nExecStart=x\n"); !slices.Equal(got, []string{"A=1", "B=2"}) {
		t.Errorf("unitEnvironment: %q", got)
	}
}
