package tlsterm_test

import (
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sluice-dev/sluice/internal/testcert"
	"github.com/sluice-dev/sluice/pkg/plugintest"
)

// TestExpirySeriesFollowWhatIsServed: the expiry gauge has a series for
// each certificate served, and only for those: a renewal under other
// names replaces its series, a config reload that keeps the handler keeps
// it, and one that removes the handler drops it.
func TestExpirySeriesFollowWhatIsServed(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "root")
	first := ca.Issue(t, testcert.Options{Names: []string{"a.test"}})
	cert, key := first.Write(t, dir, "site")
	h := plugintest.NewHarness(t, plugintest.Options{Level: hclog.Debug, JSON: true})
	withTLS := yamlConfig(certOpts(cert, key), "      - handler: echo\n")
	h.Apply(withTLS)
	expiry := func(names string) float64 {
		return h.Metric("sluice_tls_certificate_expiry_timestamp_seconds", "listener", "t", "names", names)
	}
	if got := expiry("a.test"); got != float64(first.Cert.NotAfter.Unix()) {
		t.Fatalf("expiry{a.test} = %v, want %d", got, first.Cert.NotAfter.Unix())
	}

	renewed := ca.Issue(t, testcert.Options{Names: []string{"b.test", "c.test"}})
	renewed.Write(t, dir, "site")
	waitFor(t, "the renewal's series", func() bool { return expiry("b.test,c.test") == float64(renewed.Cert.NotAfter.Unix()) })
	if got := expiry("a.test"); got != 0 {
		t.Errorf("expiry{a.test} = %v after the renewal, want no series", got)
	}

	h.Apply(yamlConfig(certOpts(cert, key)+"        alpn: [h2]\n", "      - handler: echo\n")) // the same files: the store stays
	if got := expiry("b.test,c.test"); got != float64(renewed.Cert.NotAfter.Unix()) {
		t.Errorf("expiry{b.test,c.test} = %v after a reload keeping the handler", got)
	}
	h.Apply(`
listeners:
  - name: t
    network: tcp
    address: 127.0.0.1:0
    chain:
      - handler: echo
`)
	waitFor(t, "the series to go with the handler", func() bool { return expiry("b.test,c.test") == 0 })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
