package strace

import (
	"reflect"
	"testing"
)

func TestResults(t *testing.T) {
	trace := `1234  recvfrom(5, 0xc000, 64, MSG_PEEK, NULL, NULL) = -1 EAGAIN (Resource temporarily unavailable)
1234  --- SIGURG {si_signo=SIGURG, si_code=SI_TKILL, si_pid=1, si_uid=0} ---
1235  recvfrom(7, "a) = b", 64, MSG_PEEK, NULL, NULL) = 6
1236  splice(7, NULL, 9, NULL, 65536, SPLICE_F_NONBLOCK <unfinished ...>
1234  recvfrom(5, "hello\n", 64, MSG_PEEK, NULL, NULL) = 6
1236  <... splice resumed>)             = 4096
1237  splice(9, NULL, 7, NULL, 4096, 0) = -1 EAGAIN (Resource temporarily unavailable)
1234  +++ exited with 0 +++
`
	if got, want := Results(trace, "recvfrom"), []string{"-1 EAGAIN (Resource temporarily unavailable)", "6", "6"}; !reflect.DeepEqual(got, want) {
		t.Errorf("recvfrom: %q, want %q", got, want)
	}
	if got, want := Results(trace, "splice"), []string{"4096", "-1 EAGAIN (Resource temporarily unavailable)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("splice: %q, want %q", got, want)
	}
}
