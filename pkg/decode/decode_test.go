package decode

import (
	"strings"
	"testing"
	"time"
)

type numOpts struct {
	Max   int           `mapstructure:"max"`
	Burst *int          `mapstructure:"burst"`
	Small uint16        `mapstructure:"small"`
	Rate  float64       `mapstructure:"rate"`
	Wait  time.Duration `mapstructure:"wait"`
}

func TestIntegers(t *testing.T) {
	tests := []struct {
		in   map[string]any
		want string // "" when accepted
	}{
		{map[string]any{"max": 5}, ""},
		{map[string]any{"max": 5.0}, ""}, // JSON has only floats
		{map[string]any{"max": int64(9223372036854775807)}, ""},
		{map[string]any{"max": 1.5}, "max: expected an integer, got 1.5"},
		{map[string]any{"burst": 1.5}, "burst: expected an integer, got 1.5"},
		{map[string]any{"max": 1e20}, "max: 100000000000000000000 is too large (at most 9223372036854775807)"},
		{map[string]any{"burst": 1e20}, "burst: 100000000000000000000 is too large"},
		{map[string]any{"max": uint64(18446744073709551615)}, "max: 18446744073709551615 is too large"},
		{map[string]any{"max": -1e20}, "max: -100000000000000000000 is too small"},
		{map[string]any{"small": 70000}, "small: 70000 is too large (at most 65535)"},
		{map[string]any{"small": -1}, "small: must not be negative"},
		{map[string]any{"rate": 1.5}, ""},
	}
	for _, tc := range tests {
		var o numOpts
		errs := Into(tc.in, &o)
		got := ""
		if len(errs) > 0 {
			got = errs[0].Error()
		}
		if tc.want == "" && got != "" || tc.want != "" && !strings.HasPrefix(got, tc.want) {
			t.Errorf("%v: got %q, want %q", tc.in, got, tc.want)
		}
	}
	var o numOpts
	if errs := Into(map[string]any{"max": 7.0, "burst": 3}, &o); len(errs) > 0 || o.Max != 7 || o.Burst == nil || *o.Burst != 3 {
		t.Errorf("decoded %+v, %v", o, errs)
	}
}

func TestDurationBounds(t *testing.T) {
	tests := []struct {
		in   any
		want string
	}{
		{"5m", ""},
		{"8760h", ""},
		{"8761h", `wait: duration "8761h" is too long: the maximum is 8760h (365 days)`},
		{"2100000h", `wait: duration "2100000h" is too long`},
		{"2562048h", `wait: duration "2562048h" is too long`},
		{"99999999h", `wait: duration "99999999h" is too long`},
		{"-1s", ""},
		{"5 parsecs", `wait: invalid duration "5 parsecs": want a number with a unit`},
		{5, "wait: invalid duration 5: add a unit"},
		{0, ""},
	}
	for _, tc := range tests {
		var o numOpts
		errs := Into(map[string]any{"wait": tc.in}, &o)
		got := ""
		if len(errs) > 0 {
			got = errs[0].Error()
		}
		if tc.want == "" && got != "" || tc.want != "" && !strings.HasPrefix(got, tc.want) {
			t.Errorf("%v: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Keys that are not strings (YAML's 0:, true:) and the key "-" are
// reported as unknown by name, never decoded into a field, and never
// panic: the library once did on both.
func TestOddKeys(t *testing.T) {
	type inner struct {
		A    string    `mapstructure:"a"`
		Skip time.Time `mapstructure:"-"`
	}
	type outer struct {
		In   []inner   `mapstructure:"in"`
		Skip time.Time `mapstructure:"-"`
	}
	input := map[string]any{
		"-":  map[any]any{0: nil},
		"in": []any{map[any]any{"a": "x", 7: "y", true: 1, "-": map[any]any{1: 2}}},
	}
	var out outer
	errs := Into(input, &out)
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		"-: unknown key (known: in)",
		"in[0].-: unknown key (known: a)",
		"in[0].7: unknown key (known: a)",
		"in[0].true: unknown key (known: a)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(out.In) != 1 || out.In[0].A != "x" || !out.Skip.IsZero() || !out.In[0].Skip.IsZero() {
		t.Errorf("decoded %+v", out)
	}
}
