//go:build race

package reload_test

// raceBuild: the binary under test is built with -race too, so that the
// soak also checks the real process for data races.
const raceBuild = true
