//go:build linux

package main

import "testing"

func TestParseCPUTimes(t *testing.T) {
	got, err := parseCPUTimes("cpu  1602341 5 906842 4597224 26564 0 321647 171973 0 0")
	if err != nil {
		t.Fatal(err)
	}
	if want := (cpuTimes{total: 1602341 + 5 + 906842 + 4597224 + 26564 + 321647 + 171973, steal: 171973}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 3 4 5 6 7 x"} {
		if _, err := parseCPUTimes(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := readCPUTimes(); err != nil {
		t.Fatalf("this machine's /proc/stat: %v", err)
	}
}
