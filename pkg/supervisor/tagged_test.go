package supervisor

import (
	"sync"
	"testing"
)

// tagged records the handler instances the supervisor built, by their
// tag option, so that a test can reach the instance a generation runs
// (to see its Close, its context, its flows' ends). Tests use tags that
// are unique to them, so the last instance built with a tag is theirs.
type tagged[T any] struct {
	mu    sync.Mutex
	byTag map[string][]T
}

func newTagged[T any]() *tagged[T] { return &tagged[T]{byTag: map[string][]T{}} }

// add records h, built with tag; handlers call it from Provision.
func (b *tagged[T]) add(tag string, h T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byTag[tag] = append(b.byTag[tag], h)
}

// last is the instance built last with tag.
func (b *tagged[T]) last(t *testing.T, tag string) T {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	hs := b.byTag[tag]
	if len(hs) == 0 {
		t.Fatalf("no handler with tag %q was built", tag)
	}
	return hs[len(hs)-1]
}
