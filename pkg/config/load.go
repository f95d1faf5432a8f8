package config

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/sluice-dev/sluice/pkg/decode"
)

// Load reads, decodes and validates the config file at path. A fresh viper
// instance is used every time, so that nothing of an earlier load (or a
// concurrent one) leaks into this one. On failure the error is an Errors
// listing every problem found.
func Load(path string) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: readMessage(err), Err: err}}
	}
	return Parse(path, data)
}

// Parse decodes and validates config data; path names the file in errors
// and picks the format by its extension (.json, .toml, else YAML).
func Parse(path string, data []byte) (*Config, error) {
	doc, err := parseDocument(formatOf(path), data)
	if err != nil {
		return nil, Errors{{File: path, Msg: shapeMessage(err), Err: err}}
	}
	v := viper.New()
	v.SetConfigType(formatOf(path))
	// Only the documented keys are bound, one variable each: any other
	// SLUICE_* variable (SLUICE_LOG, SLUICE_LISTENERS) is not read.
	for k, def := range envKeys {
		v.SetDefault(k, def)
		_ = v.BindEnv(k, EnvName(k)) // fails only without a key
	}
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, Errors{{File: path, Msg: parseMessage(err), Err: err}}
	}
	input := settings(v)
	if doc.root != nil {
		keepDropped(doc.root, input)
	}

	cfg := &Config{Path: path, LoadedAt: time.Now()}
	var errs Errors
	bad := map[string]bool{}
	for _, fe := range decode.Into(input, cfg) {
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
	if !doc.listeners && cfg.Admin.Address == "" {
		// Such a file would stop every listener and serve nothing: more
		// likely a file caught half-written, or the wrong file, than a
		// wish. Saying "listeners: []" makes it one.
		errs = append(errs, &Error{File: path, Key: "listeners",
			Msg: "required: this config would serve nothing (no listeners, no admin.address); write \"listeners: []\" to mean that"})
	}
	if len(errs) > 0 {
		blameEnv(errs)
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

// LoadData is Load that also returns the bytes it validated, for a
// caller that passes them on (sluice publish) and must not read the file
// a second time, which might have changed in between.
func LoadData(path string) (*Config, []byte, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, nil, Errors{{File: path, Msg: readMessage(err), Err: err}}
	}
	cfg, err := Parse(path, data)
	return cfg, data, err
}
