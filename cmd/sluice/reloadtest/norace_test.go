//go:build !race

package reload_test

const raceBuild = false
