//go:build unix && !linux

package peek

// peerClosed cannot tell a FIN behind peeked bytes without POLLRDHUP: a
// peer that half-closed mid-decision is judged at the deadline instead.
func peerClosed(int) bool { return false }

// queued is not asked elsewhere: every wait peeks.
func queued(int) (int, bool) { return 0, false }
