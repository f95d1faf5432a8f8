package config

import (
	"os"
	"slices"
	"sort"
	"strings"
)

// EnvPrefix is the prefix of the environment variables that override
// scalar keys outside listeners: SLUICE_LOG_LEVEL, SLUICE_ADMIN_ADDRESS, ...
const EnvPrefix = "SLUICE"

// envKeys are the keys that SLUICE_<SECTION>_<KEY> can override, with
// their defaults: adding an overridable key is one line here. Listeners
// are a list keyed by name and have no sensible flat form, so they are
// left to the file. No other SLUICE_* variable is read as config.
var envKeys = map[string]any{
	"log.level":              DefaultLogLevel,
	"log.format":             DefaultLogFormat,
	"admin.address":          "",
	"shutdown.drain_timeout": DefaultDrainTimeout.String(),
	"reload.drain_timeout":   "0s",
}

// otherEnv are SLUICE_* variables that are not config overrides:
// sluice's own (SLUICE_CONFIG) and those of this repository's tools,
// whose children inherit them.
var otherEnv = []string{"SLUICE_CONFIG", "SLUICE_BENCH_PINNED", "SLUICE_PROXY_SPLICE_CHILD",
	// How sluice reaches an etcd config source (see sluice run --help).
	"SLUICE_ETCD_CA", "SLUICE_ETCD_CERT", "SLUICE_ETCD_KEY", "SLUICE_ETCD_USERNAME", "SLUICE_ETCD_PASSWORD", "SLUICE_ETCD_PASSWORD_FILE"}

// EnvName is the variable that overrides key, e.g. SLUICE_LOG_LEVEL.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// UnknownEnv names each SLUICE_* variable in environ (os.Environ's form)
// that sluice does not read. Such a variable (SLUICE_LOG, SLUICE_LISTENERS)
// is ignored, and the operator is told so, rather than left with a
// misleading error about the file or with nothing at all.
func UnknownEnv(environ []string) []string {
	known := append(slices.Clone(otherEnv), EnvOverrides()...)
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix+"_") && !slices.Contains(known, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// EnvOverrides lists the variables that override config keys, sorted.
func EnvOverrides() []string {
	var names []string
	for k := range envKeys {
		names = append(names, EnvName(k))
	}
	sort.Strings(names)
	return names
}

// blameEnv adds the variable to each problem whose value came from the
// environment, so that the operator does not search the file for it.
func blameEnv(errs Errors) {
	for _, e := range errs {
		if _, ok := envKeys[e.Key]; !ok {
			continue
		}
		if _, set := os.LookupEnv(EnvName(e.Key)); set {
			e.Msg += " (from the environment: " + EnvName(e.Key) + ")"
		}
	}
}
