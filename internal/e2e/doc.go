// Package e2e holds the end-to-end tests: each runs the real sluice
// binary, built once by TestMain, as an operator would (a config file,
// sockets, signals, the admin endpoint) and checks what is seen from the
// outside. harness_test.go is the one harness they share; the package
// has no code of its own.
package e2e
