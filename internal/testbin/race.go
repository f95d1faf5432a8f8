//go:build race

package testbin

// Race reports whether this test binary runs with the race detector.
const Race = true
