package chain

// NetworkValidator is implemented by handlers that work on both stream and
// datagram listeners but have options that only make sense on one of them
// (a ratelimit's connections_per_second on UDP, say). Config validation
// calls it with the listener's network, so that `sluice validate` reports
// the mismatch, not only `sluice run`. Like Validate it must be pure.
type NetworkValidator interface {
	ValidateNetwork(network string) error
}
