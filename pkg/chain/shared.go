package chain

import "sync"

// Shared keeps state that must outlive one chain. A reload builds new
// handlers while the old chain still serves the connections it has; a
// handler whose state should carry over (a rate limiter's tokens and open
// slots) takes it from here under a key of its own, and every handler that
// asks with an equal key gets the same value until the last of them
// releases it. Since a new chain is provisioned before the old one is
// closed, a handler whose key did not change never starts afresh.
//
// Keys are compared with ==; a plugin uses a key type of its own (as with
// context keys), so that two plugins never collide. One Shared belongs to
// one supervisor; a nil *Shared shares nothing.
type Shared struct {
	mu sync.Mutex
	m  map[any]*sharedEntry
}

type sharedEntry struct {
	v    any
	refs int
}

// NewShared returns an empty store.
func NewShared() *Shared { return &Shared{m: make(map[any]*sharedEntry)} }

// Acquire returns the value stored under key, or stores and returns what
// create makes. Each Acquire is matched by one Release of the same key.
func (s *Shared) Acquire(key any, create func() any) any {
	if s == nil {
		return create()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		e = &sharedEntry{v: create()}
		s.m[key] = e
	}
	e.refs++
	return e.v
}

// Release gives back a reference taken by Acquire; the last one forgets
// the value and reports last, so that a value that owns a goroutine (a
// health checker) is stopped by whoever let go of it last. Holders may
// keep using it: it is only no longer shared. On a nil Shared every
// value is its holder's own, so every Release is the last.
func (s *Shared) Release(key any) (last bool) {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[key]; ok {
		if e.refs--; e.refs <= 0 {
			delete(s.m, key)
			return true
		}
	}
	return false
}

// Range calls f for each value held, for tests; f must not call s.
func (s *Shared) Range(f func(key, value any)) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		f(k, e.v)
	}
}
