package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/sluice-dev/sluice/pkg/decode"
)

// EnvPrefix is the prefix of the environment variables that override
// scalar keys outside listeners: SLUICE_LOG_LEVEL, SLUICE_ADMIN_ADDRESS, ...
const EnvPrefix = "SLUICE"

// envKeys are the keys that SLUICE_<SECTION>_<KEY> can override. Listeners
// are a list keyed by name and have no sensible flat form, so they are
// left to the file.
var envKeys = map[string]any{
	"log.level":              DefaultLogLevel,
	"log.format":             DefaultLogFormat,
	"admin.address":          "",
	"shutdown.drain_timeout": DefaultDrainTimeout.String(),
	"reload.drain_timeout":   "0s",
}

// Load reads, decodes and validates the config file at path. A fresh viper
// instance is used every time, so that nothing of an earlier load (or a
// concurrent one) leaks into this one. On failure the error is an Errors
// listing every problem found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: readMessage(err), Err: err}}
	}
	return Parse(path, data)
}

func readMessage(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "cannot read config: file does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "cannot read config: permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "cannot read config: " + pe.Err.Error()
	}
	return "cannot read config: " + err.Error()
}

// Parse decodes and validates config data; path names the file in errors
// and picks the format by its extension (.json, .toml, else YAML).
func Parse(path string, data []byte) (*Config, error) {
	v := viper.New()
	v.SetConfigType(formatOf(path))
	for k, def := range envKeys {
		v.SetDefault(k, def)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, Errors{{File: path, Msg: parseMessage(err), Err: err}}
	}

	cfg := &Config{Path: path, LoadedAt: time.Now()}
	var errs Errors
	bad := map[string]bool{}
	for _, fe := range decode.Into(settings(v), cfg) {
		errs = append(errs, &Error{File: path, Key: fe.Key, Msg: fe.Msg})
		bad[fe.Key] = true
	}
	// Validate what did decode too, so that one run reports every
	// problem; a key that failed to decode is not reported twice.
	for _, e := range Validate(cfg) {
		if !bad[e.Key] {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	cfg.Hash = hashJSON(cfg)
	return cfg, nil
}

// settings is the file's content with defaults and environment overrides
// applied, as a nested map. viper.AllSettings would do, but it drops keys
// whose value is an empty mapping; those are kept so that "socket:" with
// nothing under it is still checked.
func settings(v *viper.Viper) map[string]any {
	m := v.AllSettings()
	for k := range envKeys {
		section, key, _ := strings.Cut(k, ".")
		raw, exists := m[section]
		sec, ok := raw.(map[string]any)
		if exists && !ok {
			continue // not a mapping: decoding reports it
		}
		if !ok {
			sec = map[string]any{}
			m[section] = sec
		}
		sec[key] = v.Get(k)
	}
	return m
}

func formatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return "json"
	case ".toml":
		return "toml"
	}
	return "yaml"
}

// parseMessage strips viper's wrapping so that the parser's own words, with
// the line number, are what the operator reads.
func parseMessage(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "While parsing config: ")
	msg = strings.TrimPrefix(msg, "yaml: ")
	return fmt.Sprintf("malformed config: %s", msg)
}
