//go:build linux

package main

// A hop is a handler measured in front of the proxy (proxy_protocol,
// route): against the plain proxy in the same rounds, and against HAProxy
// doing the same.
type hop struct {
	// what and handler name the figures and the handler in the note when
	// this sluice build lacks the handler.
	what, handler string
	// subject is sluice's target, haproxy HAProxy's, which does
	// haproxyDoes ("req.ssl_sni").
	subject, haproxy, haproxyDoes string
	// haproxyNote names HAProxy's comparison in the note when HAProxy
	// is missing.
	haproxyNote string
}

// hopTargets starts the plain proxy to plainUp, sluice on cfg as h.subject
// and, when it is installed, HAProxy with startHAProxy. ok is false, with
// a note, when this sluice build has no h.handler.
func (e *env) hopTargets(h hop, plainUp string, cfg sluiceConfig, startHAProxy func() (*target, error)) (ts []*target, ok bool, err error) {
	if has, err := e.sluiceAccepts(h.what, h.handler, cfg); !has || err != nil {
		return nil, false, err
	}
	plain, err := e.startSluiceProxy(sluiceProxyT, plainUp)
	if err != nil {
		return nil, false, err
	}
	s, err := e.startSluiceOn(h.subject, e.o.sluice, h.subject+".yaml", nil, cfg)
	if err != nil {
		return nil, false, err
	}
	ts = []*target{plain, s}
	if e.o.compare != "" {
		c, err := e.startSluiceOn(compareT, e.o.compare, compareT+".yaml", nil, cfg)
		if err != nil {
			return nil, false, err
		}
		ts = append(ts, c)
	}
	if !e.haveHAProxy() {
		e.note("HAProxy %s comparison skipped: %q not found", h.haproxyNote, e.o.haproxy)
		return ts, true, nil
	}
	hp, err := startHAProxy()
	if err != nil {
		return nil, false, err
	}
	return append(ts, hp), true, nil
}

// ratios compare h.subject with the plain proxy, with HAProxy and with
// the -compare build doing the same, to the targets plain and haproxy
// (0: none).
func (h hop) ratios(plain, haproxy float64) []ratioSpec {
	return []ratioSpec{
		{h.subject, []string{sluiceProxyT}, "plain sluice proxy", plain, 0},
		{h.subject, []string{h.haproxy}, "HAProxy " + h.haproxyDoes, haproxy, 0},
		{h.subject, []string{compareT}, "the -compare build", 0, 0},
	}
}
