package reload

import "github.com/sluice-dev/sluice/pkg/supervisor"

// refused answers a reload asked for once shutdown has begun: nothing is
// read or applied, an unchanged file included, and it is no failed reload
// (sluice_config_reloads_total and /status's last reload stay as they
// were): the file is not at fault, the process is going away.
func (r *Reloader) refused(trigger string) (supervisor.Summary, error) {
	r.log.Info("reload refused: shutting down", "trigger", trigger)
	return supervisor.Summary{}, supervisor.ErrClosed
}
