package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/pkg/registry"
)

// defaultConfig is where a packaged sluice keeps its config, as the
// CLI's help says (cmd/sluice/root.go).
const defaultConfig = "/etc/sluice/config.yaml"

// runCLI runs the binary with args; a run that hangs (a config read that
// blocks, say) fails the test after a minute rather than the whole suite.
func runCLI(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("sluice %v: still running after a minute", args)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, dir, "listeners:\n  - {name: a, network: tcp, address: '127.0.0.1:7000', chain: [{handler: echo}]}\n  - {name: b, network: unix, address: /tmp/x.sock, chain: [{handler: echo}]}\n")
	out, errOut, code := runCLI(t, nil, "validate", "-c", good)
	if code != 0 || out != "config OK: 2 listeners\n" || errOut != "" {
		t.Errorf("good config: code %d, stdout %q, stderr %q", code, out, errOut)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("log:\n  level: loud\nlisteners:\n  - {name: a, network: tcp, adress: '127.0.0.1:1', chain: [{handler: ech0}]}\n"), 0o644)
	out, errOut, code = runCLI(t, nil, "validate", "-c", bad)
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code != 1 || out != "" || len(lines) != 4 {
		t.Fatalf("bad config: code %d, stdout %q, want 4 error lines on stderr, got:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		bad + `: listeners[0].chain[0].handler: unknown handler "ech0" (known: echo`,
		bad + `: listeners[0].adress: unknown key`,
		bad + `: listeners[0].address: required`,
		bad + `: log.level: invalid value "loud"`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestConfigPathResolution(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, "listeners: []\n")
	// $SLUICE_CONFIG is used when -c is absent.
	out, errOut, code := runCLI(t, []string{"SLUICE_CONFIG=" + path}, "validate")
	if code != 0 || out != "config OK: 0 listeners\n" {
		t.Errorf("SLUICE_CONFIG: code %d, %q %q", code, out, errOut)
	}
	// -c wins over $SLUICE_CONFIG.
	_, errOut, code = runCLI(t, []string{"SLUICE_CONFIG=" + path}, "validate", "-c", filepath.Join(dir, "other.yaml"))
	if code != 1 || !strings.Contains(errOut, "other.yaml: cannot read config: file does not exist") {
		t.Errorf("-c over env: code %d, %q", code, errOut)
	}
	// Neither: the packaged default, named in the error when absent.
	if _, err := os.Stat(defaultConfig); err != nil {
		_, errOut, code = runCLI(t, []string{"SLUICE_CONFIG="}, "validate")
		if code != 1 || !strings.Contains(errOut, defaultConfig) {
			t.Errorf("default path: code %d, %q", code, errOut)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"run", "extra"}, {"frobnicate"}, {"validate", "-c"}, {}} {
		_, errOut, code := runCLI(t, nil, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runCLI(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "sluice ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: code %d, %q", code, out)
	}
}

func TestHelpIsUseful(t *testing.T) {
	out, _, code := runCLI(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, want := range []string{"run", "validate", "version", "--config", "SLUICE_CONFIG", "/etc/sluice/config.yaml", "Exit codes"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	// The handler list comes from the registry, so a new plugin shows up
	// without anyone editing the help text. Each name is looked for on
	// its own: the test build registers test handlers (test-stall) that
	// sort among them.
	_, list, _ := strings.Cut(strings.Join(strings.Fields(out), " "), "handlers: ")
	list, _, _ = strings.Cut(list, ".")
	listed := strings.Split(list, ", ")
	for _, name := range registry.Names() {
		if !slices.Contains(listed, name) {
			t.Errorf("--help does not list the registered handler %q: %q", name, list)
		}
	}
}

// TestExampleConfigValid keeps config.example.yaml, which `make run`
// serves, valid as handlers and the schema evolve.
func TestExampleConfigValid(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "validate", "-c", "../../config.example.yaml")
	if code != 0 || !strings.HasPrefix(out, "config OK: ") {
		t.Fatalf("config.example.yaml: exit %d, %q\n%s", code, out, errOut)
	}
}
