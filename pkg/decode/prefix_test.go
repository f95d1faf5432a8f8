package decode

import "testing"

func TestPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8":    "10.0.0.0/8",
		"192.0.2.7":     "192.0.2.7/32",
		"2001:db8::1":   "2001:db8::1/128",
		"2001:db8::/32": "2001:db8::/32",
	} {
		p, err := Prefix(in)
		if err != nil || p.String() != want {
			t.Errorf("Prefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "example.com", "10.0.0.1/"} {
		if p, err := Prefix(bad); err == nil {
			t.Errorf("Prefix(%q) = %v, want an error", bad, p)
		}
	}
}
