package etcdsource

import (
	"slices"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in        string
		endpoints []string
		key       string
		err       string
	}{
		{in: "etcd://127.0.0.1:2379/sluice/config.yaml", endpoints: []string{"127.0.0.1:2379"}, key: "/sluice/config.yaml"},
		{in: "etcd://h1:2379,h2:2379,[::1]:2379/k", endpoints: []string{"h1:2379", "h2:2379", "[::1]:2379"}, key: "/k"},
		{in: "/etc/sluice/config.yaml", err: "not an etcd URL"},
		{in: "etcd://127.0.0.1:2379", err: "no key"},
		{in: "etcd://127.0.0.1:2379/", err: "no key"},
		{in: "etcd://127.0.0.1/k", err: `member "127.0.0.1" is not host:port`},
		{in: "etcd://a:1,,b:2/k", err: "empty host"},
		{in: "etcd://a:1/k?x=1", err: "may not hold"},
	} {
		got, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q): error %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(got.Endpoints, tc.endpoints) || got.Key != tc.key || got.URL != tc.in {
			t.Errorf("ParseURL(%q) = %+v, want endpoints %v key %s", tc.in, got, tc.endpoints, tc.key)
		}
	}
}

func TestAccessTLSNeedsCertAndKey(t *testing.T) {
	tg, _ := ParseURL("etcd://127.0.0.1:2379/k")
	for _, a := range []Access{{Cert: "c.pem"}, {Key: "k.pem"}} {
		if _, err := NewClient(tg, a); err == nil || !strings.Contains(err.Error(), "--etcd-cert and --etcd-key") {
			t.Errorf("NewClient(%+v): %v, want the pair asked for", a, err)
		}
	}
	if _, err := NewClient(tg, Access{CA: "/nonexistent/ca.pem"}); err == nil || !strings.Contains(err.Error(), "CA file") {
		t.Errorf("NewClient with a missing CA: %v", err)
	}
}
