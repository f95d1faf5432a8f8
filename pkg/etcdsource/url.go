// Package etcdsource reads sluice's config from one etcd key: the whole
// document under one key, so that every change is atomic. It gets the
// document, watches the key for changes (resuming from the last revision
// seen after a network error or an etcd restart), keeps a local copy of
// the last document applied for a start while etcd is down, and
// publishes new documents with an optional compare-and-swap.
//
// The bytes go through pkg/config's parser and validator as a file's do,
// and the reloads through pkg/reload's one transaction: only where the
// bytes come from differs.
package etcdsource

import (
	"fmt"
	"net"
	"strings"
)

// Scheme prefixes a config "path" that names an etcd key.
const Scheme = "etcd://"

// IsURL reports whether a -c argument names an etcd key rather than a
// file.
func IsURL(s string) bool { return strings.HasPrefix(s, Scheme) }

// Target is an etcd key and the members that serve it, as parsed from
// etcd://host1:2379,host2:2379/sluice/config.yaml.
type Target struct {
	URL       string   // as given: names the document in errors and logs
	Endpoints []string // host:port each
	Key       string   // "/sluice/config.yaml": the URL's path
}

// ParseURL parses an etcd:// config location.
func ParseURL(raw string) (Target, error) {
	if !IsURL(raw) {
		return Target{}, fmt.Errorf("%q: not an etcd URL (want %shost:port[,host:port...]/key)", raw, Scheme)
	}
	rest := strings.TrimPrefix(raw, Scheme)
	hosts, path, ok := strings.Cut(rest, "/")
	if !ok || path == "" {
		return Target{}, fmt.Errorf("%q: no key (want %shost:port[,host:port...]/key)", raw, Scheme)
	}
	if strings.ContainsAny(path, "?#") {
		return Target{}, fmt.Errorf("%q: the key may not hold '?' or '#'", raw)
	}
	t := Target{URL: raw, Key: "/" + path}
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return Target{}, fmt.Errorf("%q: empty host in the member list", raw)
		}
		if _, port, err := net.SplitHostPort(h); err != nil || port == "" {
			return Target{}, fmt.Errorf("%q: member %q is not host:port", raw, h)
		}
		t.Endpoints = append(t.Endpoints, h)
	}
	return t, nil
}
