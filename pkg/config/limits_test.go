package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-dev/sluice/pkg/config"
)

func TestLoadReadsOnlyBoundedRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, config.MaxSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	atLimit := filepath.Join(dir, "limit.yaml")
	body := "listeners: []\n"
	if err := os.WriteFile(atLimit, []byte(body+strings.Repeat("#", config.MaxSize-len(body))), 0o644); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]error{fifo: config.ErrNotRegular, "/dev/zero": config.ErrNotRegular, dir: config.ErrNotRegular, big: config.ErrTooLarge} {
		if _, err := config.Load(path); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", path, err, want)
		}
	}
	if _, err := config.Load(atLimit); err != nil {
		t.Errorf("a file of exactly 4 MiB: %v", err)
	}
}

func TestParseStructureLimits(t *testing.T) {
	nest := func(n int) string {
		var b strings.Builder
		b.WriteString("listeners: []\nx:\n")
		for i := 1; i < n; i++ {
			fmt.Fprintf(&b, "%sa:\n", strings.Repeat(" ", i))
		}
		return b.String()
	}
	// nest(n) is n mappings, one in the other: the top one, x's, and
	// n-2 more.
	if _, err := config.Parse("c.yaml", []byte(nest(32))); err == nil || strings.Contains(err.Error(), "too complex") {
		t.Errorf("32 levels: %v; want only the unknown key x", err)
	}
	if _, err := config.Parse("c.yaml", []byte(nest(33))); err == nil || !strings.Contains(err.Error(), "nested more than 32 levels deep") {
		t.Errorf("33 levels: %v", err)
	}
	for _, tc := range []struct{ name, body string }{
		{"c.yaml", ""}, {"c.yaml", "# x\n  \n"}, {"c.yaml", "---\n"}, {"c.yaml", "null\n"},
		{"c.json", " \n"}, {"c.json", "null"}, {"c.toml", "# x\n"},
	} {
		if _, err := config.Parse(tc.name, []byte(tc.body)); !errors.Is(err, config.ErrEmpty) {
			t.Errorf("%s %q: %v, want ErrEmpty", tc.name, tc.body, err)
		}
	}
	for _, tc := range []struct{ name, body string }{
		{"c.yaml", "listeners: []\n"}, {"c.json", `{"listeners": []}`}, {"c.toml", "listeners = []\n"},
		{"c.yaml", "admin: {address: '127.0.0.1:0'}\n"}, {"c.yaml", "Listeners: []\n"},
	} {
		if _, err := config.Parse(tc.name, []byte(tc.body)); err != nil {
			t.Errorf("%s %q: %v", tc.name, tc.body, err)
		}
	}
	if _, err := config.Parse("c.yaml", []byte("log: {level: info}\n")); err == nil || !strings.Contains(err.Error(), "listeners: required") {
		t.Errorf("no listeners key: %v", err)
	}
}

func TestNullUnknownKeys(t *testing.T) {
	for body, want := range map[string]string{
		"listeners: []\nadmin:\n  adress:\n":   "admin.adress: unknown key",
		"listeners: []\nlistners:\n":           "listners: unknown key",
		"listeners: []\nLOG:\n  Levl:\n":       "log.levl: unknown key",
		"listeners: []\nshutdown:\n  drain:\n": "shutdown.drain: unknown key",
		"listeners: []\nadmin: {x: {y: }}\n":   "admin.x: unknown key",
		"listeners: []\nextra: {}\n":           "extra: unknown key",
	} {
		if _, err := config.Parse("c.yaml", []byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
	// A known key left empty keeps its default.
	cfg, err := config.Parse("c.yaml", []byte("listeners:\nadmin:\n  address:\nlog:\n"))
	if err != nil || cfg.Log.Level != "info" || cfg.Admin.Address != "" {
		t.Errorf("empty known keys: %+v, %v", cfg, err)
	}
}

func TestEnvironmentAllowList(t *testing.T) {
	got := config.UnknownEnv([]string{"SLUICE_LOG=/x", "SLUICE_LOG_LEVEL=debug", "SLUICE_CONFIG=/c", "SLUICE_LISTENERS=x", "PATH=/bin", "SLUICEX=1"})
	if strings.Join(got, ",") != "SLUICE_LISTENERS,SLUICE_LOG" {
		t.Errorf("unknown: %v", got)
	}
	t.Setenv("SLUICE_LOG", "/var/log/sluice.log")
	t.Setenv("SLUICE_LISTENERS", "x")
	if _, err := config.Parse("c.yaml", []byte("listeners: []\n")); err != nil {
		t.Errorf("stray variables are read: %v", err)
	}
	t.Setenv("SLUICE_SHUTDOWN_DRAIN_TIMEOUT", "9999999h")
	_, err := config.Parse("c.yaml", []byte("listeners: []\n"))
	if err == nil || !strings.Contains(err.Error(), "(from the environment: SLUICE_SHUTDOWN_DRAIN_TIMEOUT)") {
		t.Errorf("an override's error does not name the variable: %v", err)
	}
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("x: %w", syscall.EMFILE), true},
		{config.Errors{{Err: syscall.ENFILE}}, true},
		{fmt.Errorf("x: %w", syscall.EACCES), false},
		{config.Errors{{Err: config.ErrTooLarge}}, false},
	} {
		if got := config.Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v", tc.err, got)
		}
	}
}
