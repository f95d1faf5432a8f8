package route_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/config"
)

// Every error of every nested chain is reported at once, each at its full
// key path.
func TestValidateNestedKeyPaths(t *testing.T) {
	_, err := config.Parse("c.yaml", []byte(routeConfig(withLog, `
        timeout: -1s
        routes:
          - match: {sni: ["a.example.com"]}
            chain: [{handler: proxy}]
          - match: {remote: [10.0.0.0/33], protocol: smtp}
            chain: [{handler: echo}]
          - match: {sni: ["*.x.com"]}
            chain: [{handler: ech0}]
          - match: {protocol: ssh}
            chain: [{handler: log}]
          - match: {protocol: tls}
            chain:
              - handler: route
                routes:
                  - match: {alpn: [h2]}
                    chain: [{handler: echo, bogus: 1}]
          - chain: [{handler: echo}]
        default: [{handler: echo}, {handler: log}]
`)+`  - name: udp
    network: udp
    address: 127.0.0.1:0
    chain: [{handler: route, default: [{handler: echo}]}]
`))
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, want := range []string{
		`c.yaml: listeners[0].chain[1] (route): timeout: must not be negative`,
		`c.yaml: listeners[0].chain[1].routes[0].chain[0] (proxy): upstreams: required`,
		`c.yaml: listeners[0].chain[1] (route): routes[1].match.protocol: invalid value "smtp" (allowed: tls, http, ssh)`,
		`c.yaml: listeners[0].chain[1] (route): routes[1].match.remote[0]: invalid CIDR "10.0.0.0/33"`,
		`c.yaml: listeners[0].chain[1].routes[2].chain[0].handler: unknown handler "ech0" (known: `,
		`c.yaml: listeners[0].chain[1].routes[3].chain[0].handler: the chain must end in a terminal handler, and "log" is not one`,
		`c.yaml: listeners[0].chain[1].routes[4].chain[0].routes[0].chain[0] (echo): bogus: unknown key`,
		`c.yaml: listeners[0].chain[1] (route): routes[5].match: required`,
		`c.yaml: listeners[0].chain[1].default[0].handler: "echo" is a terminal handler and must be the last of the chain`,
		`c.yaml: listeners[0].chain[1].default[1].handler: the chain must end in a terminal handler`,
		`c.yaml: listeners[1].chain[0] (route): routes connections by their first bytes: it works on stream listeners`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 12 {
		t.Errorf("%d errors, want 12:\n%s", n, got)
	}
}

// max_bytes is what each connection may buffer: bounded, so that a typo
// (1GiB for 1KiB) cannot let every client make sluice hold a gigabyte.
func TestValidateMaxBytes(t *testing.T) {
	for size, want := range map[string]string{
		"-1":    "max_bytes: byte size -1 is negative",
		"2MiB":  "max_bytes: 2.0 MiB is too large: at most 1MiB",
		"1GiB":  "max_bytes: 1.0 GiB is too large",
		"1MiB":  "",
		"16KiB": "",
	} {
		_, err := config.Parse("c.yaml", []byte(routeConfig(withLog, `
        max_bytes: `+size+`
        default: [{handler: echo}]
`)))
		switch {
		case want == "" && err != nil:
			t.Errorf("max_bytes %s refused: %v", size, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("max_bytes %s: %v; want %q", size, err, want)
		}
	}
}
