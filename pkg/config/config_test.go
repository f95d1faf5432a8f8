package config_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/chain"
	"github.com/sluice-dev/sluice/pkg/config"
	"github.com/sluice-dev/sluice/pkg/decode"
	"github.com/sluice-dev/sluice/pkg/registry"
)

// Test handlers: the config package must not import plugins, so the tests
// register stand-ins with the kinds that matter for chain validation.
type testTerminal struct{}

func (testTerminal) ServeStream(context.Context, *chain.Conn) error { return nil }

type testMiddleware struct {
	Burst int           `mapstructure:"burst"`
	Every time.Duration `mapstructure:"every"`
}

func (m *testMiddleware) WrapStream(next chain.StreamHandler) chain.StreamHandler { return next }

func (m *testMiddleware) Validate() error {
	if m.Burst < 0 {
		return errors.New("burst must be >= 0")
	}
	return nil
}

type testPacketTerminal struct{}

func (testPacketTerminal) ServePacket(context.Context, *chain.Packet) error { return nil }

func init() {
	registry.Register("t-echo", func() any { return new(testTerminal) })
	registry.Register("t-mw", func() any { return new(testMiddleware) })
	registry.Register("t-udp", func() any { return new(testPacketTerminal) })
}

const good = `
log:
  level: debug
  format: json
admin:
  address: 127.0.0.1:9090
shutdown:
  drain_timeout: 2s
reload:
  drain_timeout: 90s
listeners:
  - name: echo-tcp
    network: tcp
    address: 127.0.0.1:7000
    idle_timeout: 5m
    chain:
      - handler: t-mw
        burst: 3
        every: 250ms
      - handler: t-echo
  - name: echo_unix
    network: unix
    address: /tmp/sluice-test.sock
    socket:
      mode: "0660"
    chain:
      - handler: t-echo
  - name: udp
    network: udp
    address: 127.0.0.1:7000
    chain:
      - handler: t-udp
`

func TestParseGood(t *testing.T) {
	cfg, err := config.Parse("config.yaml", []byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if cfg.Log.Level != "debug" || cfg.Log.Format != "json" {
		t.Errorf("log = %+v", cfg.Log)
	}
	if cfg.Shutdown.DrainTimeout != 2*time.Second {
		t.Errorf("drain_timeout = %v", cfg.Shutdown.DrainTimeout)
	}
	if cfg.Reload.DrainTimeout != 90*time.Second {
		t.Errorf("reload.drain_timeout = %v", cfg.Reload.DrainTimeout)
	}
	if len(cfg.Listeners) != 3 {
		t.Fatalf("listeners = %d, want 3", len(cfg.Listeners))
	}
	l := cfg.Listeners[0]
	if l.IdleTimeout != 5*time.Minute || l.Chain[0].Handler != "t-mw" || l.Chain[0].Options["burst"] != 3 {
		t.Errorf("listener 0 = %+v", l)
	}
	if cfg.Listeners[1].Socket.Mode != "0660" {
		t.Errorf("socket mode = %q", cfg.Listeners[1].Socket.Mode)
	}
	if len(cfg.Hash) != 64 {
		t.Errorf("hash = %q", cfg.Hash)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte("listeners: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "info" || cfg.Log.Format != "text" || cfg.Admin.Address != "" || cfg.Shutdown.DrainTimeout != 30*time.Second {
		t.Errorf("defaults = %+v %+v %+v", cfg.Log, cfg.Admin, cfg.Shutdown)
	}
	// 0: a reload never cuts a connection unless told to.
	if cfg.Reload.DrainTimeout != 0 {
		t.Errorf("reload.drain_timeout default = %v, want 0", cfg.Reload.DrainTimeout)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("SLUICE_LOG_LEVEL", "warn")
	t.Setenv("SLUICE_ADMIN_ADDRESS", "127.0.0.1:9091")
	t.Setenv("SLUICE_SHUTDOWN_DRAIN_TIMEOUT", "7s")
	t.Setenv("SLUICE_RELOAD_DRAIN_TIMEOUT", "3m")
	cfg, err := config.Parse("c.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Reload.DrainTimeout != 3*time.Minute {
		t.Errorf("SLUICE_RELOAD_DRAIN_TIMEOUT not applied: %v", cfg.Reload.DrainTimeout)
	}
	if cfg.Log.Level != "warn" || cfg.Admin.Address != "127.0.0.1:9091" || cfg.Shutdown.DrainTimeout != 7*time.Second {
		t.Errorf("overrides not applied: %+v %+v %+v", cfg.Log, cfg.Admin, cfg.Shutdown)
	}
	t.Setenv("SLUICE_LOG_LEVEL", "chatty")
	_, err = config.Parse("c.yaml", []byte(good))
	wantErr(t, err, `c.yaml: log.level: invalid value "chatty"`)
}

func TestHashIgnoresFormatting(t *testing.T) {
	a, err := config.Parse("a.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Parse("b.yaml", []byte("# a comment\n"+strings.ReplaceAll(good, "  level: debug", "  level:   debug   # loud")))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash {
		t.Error("same meaning, different hash")
	}
	c, err := config.Parse("c.yaml", []byte(strings.ReplaceAll(good, "burst: 3", "burst: 4")))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash == c.Hash {
		t.Error("different options, same hash")
	}
	if a.Listeners[0].Hash() == c.Listeners[0].Hash() || a.Listeners[1].Hash() != c.Listeners[1].Hash() {
		t.Error("listener hashes do not follow their own content")
	}
}

func TestFormatsByExtension(t *testing.T) {
	js := `{"listeners":[{"name":"a","network":"tcp","address":"127.0.0.1:1","chain":[{"handler":"t-echo"}]}]}`
	if _, err := config.Parse("c.json", []byte(js)); err != nil {
		t.Errorf("json: %v", err)
	}
	toml := "[[listeners]]\nname = \"a\"\nnetwork = \"tcp\"\naddress = \"127.0.0.1:1\"\n[[listeners.chain]]\nhandler = \"t-echo\"\n"
	if _, err := config.Parse("c.toml", []byte(toml)); err != nil {
		t.Errorf("toml: %v", err)
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.yaml")
	_, err := config.Load(missing)
	wantErr(t, err, missing+": cannot read config: file does not exist")

	if os.Geteuid() != 0 { // root reads anything
		unreadable := filepath.Join(dir, "secret.yaml")
		if err := os.WriteFile(unreadable, []byte(good), 0o000); err != nil {
			t.Fatal(err)
		}
		_, err = config.Load(unreadable)
		wantErr(t, err, unreadable+": cannot read config: permission denied")
	}
}

// listener builds a one-listener config around the given YAML lines.
func listener(lines ...string) string {
	return "listeners:\n  - " + strings.Join(lines, "\n    ") + "\n"
}

var base = []string{"name: a", "network: tcp", "address: 127.0.0.1:7000"}

func with(extra ...string) string { return listener(append(append([]string{}, base...), extra...)...) }

func TestValidationErrors(t *testing.T) {
	chainOK := []string{"chain:", "  - handler: t-echo"}
	tests := []struct {
		name string
		yaml string
		want []string // each must appear, one error a line
	}{
		{"malformed yaml", "listeners:\n  - name: a\n   network: tcp\n", []string{"c.yaml: malformed config: line "}},
		{"unknown top key", "lgo:\n  level: info\n", []string{"c.yaml: lgo: unknown key (known: admin, listeners, log, reload, shutdown)"}},
		{"unknown log key", "log:\n  fromat: json\n", []string{"c.yaml: log.fromat: unknown key (known: format, level)"}},
		{"typo in listener", listener("name: a", "network: tcp", "adress: 127.0.0.1:1", "chain:", "  - handler: t-echo"),
			[]string{"listeners[0].adress: unknown key (known: address, chain, idle_timeout, name, network, socket, tcp_keepalive)", "listeners[0].address: required"}},
		{"bad level", "log:\n  level: loud\n", []string{`log.level: invalid value "loud" (allowed: trace, debug, info, warn, error)`}},
		{"bad format", "log:\n  format: xml\n", []string{`log.format: invalid value "xml" (allowed: text, json)`}},
		{"bad drain", "shutdown:\n  drain_timeout: soon\n", []string{`shutdown.drain_timeout: invalid duration "soon"`}},
		{"unitless drain", "shutdown:\n  drain_timeout: 5\n", []string{`shutdown.drain_timeout: invalid duration 5: add a unit, e.g. 5s`}},
		{"bad reload drain", "reload:\n  drain_timeout: later\n", []string{`reload.drain_timeout: invalid duration "later"`}},
		{"negative reload drain", "reload:\n  drain_timeout: -1s\n", []string{`reload.drain_timeout: must not be negative`}},
		{"unknown reload key", "reload:\n  timeout: 1s\n", []string{`reload.timeout: unknown key (known: drain_timeout)`}},
		{"bad admin", "admin:\n  address: localhost\n", []string{`admin.address: invalid address "localhost"`}},
		{"bad network", listener("name: a", "network: sctp", "address: x:1", chainOK[0], chainOK[1]), []string{`listeners[0].network: invalid value "sctp"`}},
		{"bad port", listener("name: a", "network: tcp", "address: 127.0.0.1:70000", chainOK[0], chainOK[1]), []string{`listeners[0].address: invalid port "70000"`}},
		{"bad name", listener("name: Echo!", "network: tcp", "address: 127.0.0.1:1", chainOK[0], chainOK[1]), []string{`listeners[0].name: invalid name "Echo!"`}},
		{"missing name", listener("network: tcp", "address: 127.0.0.1:1", chainOK[0], chainOK[1]), []string{`listeners[0].name: required`}},
		{"bad idle", with(append([]string{"idle_timeout: 5x"}, chainOK...)...), []string{`listeners[0].idle_timeout: invalid duration "5x"`}},
		{"wrong type", with(append([]string{"idle_timeout: [1]"}, chainOK...)...), []string{`listeners[0].idle_timeout: `}},
		{"negative keepalive", with(append([]string{"tcp_keepalive: -1s"}, chainOK...)...), []string{`listeners[0].tcp_keepalive: must not be negative (0 turns keepalive off)`}},
		{"sub-second keepalive", with(append([]string{"tcp_keepalive: 200ms"}, chainOK...)...), []string{`listeners[0].tcp_keepalive: must be at least 1s, or 0 to turn keepalive off`}},
		{"keepalive past the kernel's limit", with(append([]string{"tcp_keepalive: 10h"}, chainOK...)...), []string{`listeners[0].tcp_keepalive: 10h0m0s is too long: the kernel takes at most 9h6m7s (32767s)`}},
		{"keepalive on unix", listener("name: u", "network: unix", "address: /tmp/x.sock", "tcp_keepalive: 10s", chainOK[0], chainOK[1]), []string{`listeners[0].tcp_keepalive: only applies to tcp listeners`}},
		{"socket on tcp", with(append([]string{"socket:", "  mode: \"0600\""}, chainOK...)...), []string{`listeners[0].socket: only applies to unix listeners`}},
		{"bad mode", listener("name: u", "network: unix", "address: /tmp/x.sock", "socket:", "  mode: \"999\"", chainOK[0], chainOK[1]), []string{`listeners[0].socket.mode: invalid mode "999"`}},
		{"no chain", with(), []string{`listeners[0].chain: required: at least one handler, ending in a terminal one (t-echo)`}},
		{"unknown handler", with("chain:", "  - handler: ech0"), []string{`listeners[0].chain[0].handler: unknown handler "ech0" (known: `}},
		{"middleware last", with("chain:", "  - handler: t-mw"), []string{`listeners[0].chain[0].handler: the chain must end in a terminal handler, and "t-mw" is not one (terminal: t-echo)`}},
		{"terminal first", with("chain:", "  - handler: t-echo", "  - handler: t-echo"), []string{`listeners[0].chain[0].handler: "t-echo" is a terminal handler and must be the last of the chain`}},
		{"stream handler on udp", listener("name: u", "network: udp", "address: 127.0.0.1:1", chainOK[0], chainOK[1]), []string{`listeners[0].chain[0].handler: handler "t-echo" does not work on udp listeners`}},
		{"unknown option", with("chain:", "  - handler: t-mw", "    brust: 3", "  - handler: t-echo"), []string{`listeners[0].chain[0] (t-mw): brust: unknown key (known: burst, every)`}},
		{"option type", with("chain:", "  - handler: t-mw", "    burst: lots", "  - handler: t-echo"), []string{`listeners[0].chain[0] (t-mw): burst: expected an integer, got string "lots"`}},
		{"option validate", with("chain:", "  - handler: t-mw", "    burst: -1", "  - handler: t-echo"), []string{`listeners[0].chain[0] (t-mw): burst must be >= 0`}},
		{"option duration", with("chain:", "  - handler: t-mw", "    every: fast", "  - handler: t-echo"), []string{`listeners[0].chain[0] (t-mw): every: invalid duration "fast"`}},
		{"duplicates", "listeners:\n" +
			"  - {name: a, network: tcp, address: '127.0.0.1:1', chain: [{handler: t-echo}]}\n" +
			"  - {name: a, network: tcp4, address: '127.0.0.1:1', chain: [{handler: t-echo}]}\n",
			[]string{`listeners[1].name: duplicate listener name "a" (also listeners[0])`, `listeners[1].address: duplicate address "127.0.0.1:1" (also listeners[0])`}},
		{"same port tcp and udp is fine", "listeners:\n" +
			"  - {name: a, network: tcp, address: '127.0.0.1:1', chain: [{handler: t-echo}]}\n" +
			"  - {name: b, network: udp, address: '127.0.0.1:1', chain: [{handler: t-udp}]}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(tt.yaml))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			for _, w := range tt.want {
				wantErr(t, err, w)
			}
		})
	}
}

// TestAllErrorsReported checks that one run reports every problem, not
// only the first.
func TestAllErrorsReported(t *testing.T) {
	y := "log:\n  level: loud\nlisteners:\n" +
		"  - {name: a, network: tcpx, address: '127.0.0.1:1', chain: [{handler: ech0}]}\n" +
		"  - {name: b, network: tcp, address: '127.0.0.1:2', idle_timeout: 5x, chain: [{handler: t-echo}]}\n"
	_, err := config.Parse("c.yaml", []byte(y))
	if got := len(decode.Split(err)); got != 4 {
		t.Fatalf("got %d errors, want 4:\n%v", got, err)
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	for _, e := range decode.Split(err) {
		if strings.Contains(e.Error(), want) {
			return
		}
	}
	t.Errorf("no error contains %q; got:\n%v", want, err)
}
