package proxyprotocol_test

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/pkg/config"
)

// TestValidation: every bad option is reported with its key path.
func TestValidation(t *testing.T) {
	tests := []struct {
		name    string
		network string
		address string
		options string
		want    []string // "": the config is valid
	}{
		{"trusted required on tcp", "tcp", "127.0.0.1:7000", "", []string{
			`listeners[0].chain[0] (proxy_protocol): trusted: required on a tcp listener`}},
		{"bad entries", "tcp", "127.0.0.1:7000", `
        trusted: [10.0.0.0/33, nowhere, 127.0.0.1]
        timeout: -1s
        required: maybe`, []string{
			`trusted[0]: "10.0.0.0/33" is not a CIDR`,
			`trusted[1]: "nowhere" is not a CIDR`,
			`timeout: must be > 0`,
			`required:`}},
		{"udp", "udp", "127.0.0.1:7000", `
        trusted: [127.0.0.1/32]`, []string{
			`listeners[0].chain[0] (proxy_protocol): the PROXY protocol is read on stream listeners (tcp, unix), not on udp listeners`}},
		{"unknown key", "tcp", "127.0.0.1:7000", `
        trusted: [127.0.0.1/32]
        versions: [1]`, []string{`versions: unknown key (known: required, timeout, trusted)`}},
		{"unix without trusted", "unix", "./pp.sock", "", nil},
		{"tcp", "tcp6", "[::1]:7000", `
        trusted: ["fd00::/8", 127.0.0.1]
        required: false
        timeout: 1s`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			terminal := "echo"
			yaml := `
listeners:
  - name: front
    network: ` + tt.network + `
    address: "` + tt.address + `"
    chain:
      - handler: proxy_protocol` + tt.options + `
      - handler: ` + terminal + "\n"
			_, err := config.Parse("test.yaml", []byte(yaml))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("config accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
