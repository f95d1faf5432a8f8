package e2e

import (
	"strings"
	"testing"
)

// `sluice validate` reports every error of every chain nested in a route,
// each at its full key path, in one run.
func TestValidateNestedRouteChains(t *testing.T) {
	path := writeConfig(t, t.TempDir(), `
listeners:
  - name: front
    network: tcp
    address: 127.0.0.1:7443
    chain:
      - handler: log
      - handler: route
        routes:
          - match: {sni: [a.example.com]}
            chain: [{handler: proxy, upstreams: ["tcp://127.0.0.1:9443"]}]
          - match: {protocol: ssh}
            chain: [{handler: ech0}]
          - match: {http_host: [api.example.com]}
            chain: [{handler: proxy, upstreams: ["ftp://x"]}]
        default: [{handler: ratelimit, burst: 0, connections_per_second: 1}, {handler: echo}]
`)
	out, errOut, code := runCLI(t, nil, "validate", "-c", path)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || out != "" || len(lines) != 3 {
		t.Fatalf("code %d, stdout %q, want 3 error lines on stderr, got:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		path + `: listeners[0].chain[1].routes[1].chain[0].handler: unknown handler "ech0" (known: `,
		path + `: listeners[0].chain[1].routes[2].chain[0] (proxy): upstreams[0]: `,
		path + `: listeners[0].chain[1].default[0] (ratelimit): burst: must be > 0`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}
