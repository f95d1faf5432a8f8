package admin

import (
	"errors"
	"net/http"
	"os"

	"github.com/sluice-dev/sluice/pkg/upgrade"
)

// UpgradeResponse is the body of POST /upgrade.
type UpgradeResponse struct {
	Result string `json:"result"` // success, failure, refused
	// PID is the new process's on success; PreviousPID is this one's,
	// which now drains and exits.
	PID         int    `json:"pid,omitempty"`
	PreviousPID int    `json:"previous_pid"`
	Error       string `json:"error,omitempty"`
}

// upgrade runs the same upgrade as SIGUSR2 and answers once the new
// process is ready (200) or has failed (500; this process keeps serving).
// An upgrade that cannot start now (one is running, or the previous
// process still drains) is 409. The response is written by this process,
// which drains its own requests before it exits.
func (a *Admin) upgrade(w http.ResponseWriter, _ *http.Request) {
	resp := UpgradeResponse{PreviousPID: os.Getpid()}
	// The client's next request must find whichever process listens then,
	// not this one on a kept-alive connection.
	w.Header().Set("Connection", "close")
	if a.upgrader == nil {
		resp.Result, resp.Error = "failure", "upgrades are not available in this process"
		writeJSON(w, http.StatusNotImplemented, resp)
		return
	}
	pid, err := a.upgrader.Upgrade("admin")
	if err != nil {
		resp.Error = err.Error()
		if refused(err) {
			resp.Result = "refused"
			writeJSON(w, http.StatusConflict, resp)
			return
		}
		resp.Result = "failure"
		writeJSON(w, http.StatusInternalServerError, resp)
		return
	}
	resp.Result, resp.PID = "success", pid
	writeJSON(w, http.StatusOK, resp)
}

func refused(err error) bool {
	for _, e := range []error{upgrade.ErrBusy, upgrade.ErrDraining, upgrade.ErrDone, upgrade.ErrStopping} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// StopAccepting closes the endpoint's socket in this process once an
// upgrade handed it over: from then on only the new process answers on
// the address. Requests in flight here finish; Close ends the rest.
func (a *Admin) StopAccepting() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cur != nil {
		_ = a.cur.ln.Close()
	}
}
