package ratelimit

import "github.com/sluice-dev/sluice/pkg/chain"

// TableLen is the number of addresses in the per-address tables of the
// states kept in sh for listener (tests only).
func TableLen(sh *chain.Shared, listener string) int {
	n := 0
	sh.Range(func(key, v any) {
		k, ok := key.(stateKey)
		if !ok || k.listener != listener {
			return
		}
		s := v.(*state)
		if s.perIP != nil {
			n += s.perIP.len()
		}
		if s.packets != nil {
			n += s.packets.len()
		}
	})
	return n
}

// States is the number of limiter states kept in sh (tests only).
func States(sh *chain.Shared) int {
	n := 0
	sh.Range(func(key, _ any) {
		if _, ok := key.(stateKey); ok {
			n++
		}
	})
	return n
}
