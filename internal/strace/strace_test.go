package strace

import (
	"reflect"
	"testing"
)

func TestCalls(t *testing.T) {
	trace := `1234  recvfrom(5, 0xc000, 64, MSG_PEEK, NULL, NULL) = -1 EAGAIN (Resource temporarily unavailable)
1234  --- SIGURG {si_signo=SIGURG, si_code=SI_TKILL, si_pid=1, si_uid=0} ---
1235  recvfrom(7, "a) = b", 64, MSG_PEEK, NULL, NULL) = 6
1236  splice(7, NULL, 9, NULL, 65536, SPLICE_F_NONBLOCK <unfinished ...>
1237  splice(9, NULL, 8, NULL, 4096, 0 <unfinished ...>
1234  recvfrom(5, "hello\n", 64, MSG_PEEK, NULL, NULL) = 6
1237  <... splice resumed>)             = -1 EAGAIN (Resource temporarily unavailable)
1236  <... splice resumed>)             = 4096
1234  +++ exited with 0 +++
`
	eagain := "-1 EAGAIN (Resource temporarily unavailable)"
	if got, want := Calls(trace, "recvfrom"), []Call{{5, eagain}, {7, "6"}, {5, "6"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("recvfrom: %+v, want %+v", got, want)
	}
	if got, want := Calls(trace, "splice"), []Call{{9, eagain}, {7, "4096"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("splice: %+v, want %+v", got, want)
	}
	if got := Calls(trace, "recv"); len(got) != 0 {
		t.Errorf("recv matched %+v", got)
	}
}
