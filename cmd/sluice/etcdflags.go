package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/pkg/etcdsource"
)

// etcdFlags are how sluice reaches an etcd config source: TLS files and a
// user, each a flag or else a SLUICE_ETCD_* variable. They are never read
// from the config document, which they protect.
var etcdFlags = []struct{ flag, env, usage string }{
	{"etcd-ca", "SLUICE_ETCD_CA", "CA file (PEM) that signs etcd's server certificate; enables TLS"},
	{"etcd-cert", "SLUICE_ETCD_CERT", "client certificate (PEM) for etcd; with --etcd-key"},
	{"etcd-key", "SLUICE_ETCD_KEY", "client key (PEM) for etcd; with --etcd-cert"},
	// The password has no flag of its own: on a command line, ps
	// would show it. $SLUICE_ETCD_PASSWORD or a file it is.
	{"etcd-username", "SLUICE_ETCD_USERNAME", "etcd user; its password from $SLUICE_ETCD_PASSWORD or --etcd-password-file"},
	{"etcd-password-file", "SLUICE_ETCD_PASSWORD_FILE", "file holding the etcd user's password"},
}

func addEtcdFlags(cmd *cobra.Command) {
	for _, f := range etcdFlags {
		cmd.Flags().String(f.flag, "", f.usage+" (env "+f.env+")")
	}
}

// etcdAccess reads the etcd flags, each falling back to its variable.
func etcdAccess(cmd *cobra.Command) (etcdsource.Access, error) {
	get := func(i int) string {
		if v, _ := cmd.Flags().GetString(etcdFlags[i].flag); v != "" {
			return v
		}
		return os.Getenv(etcdFlags[i].env)
	}
	a := etcdsource.Access{CA: get(0), Cert: get(1), Key: get(2), Username: get(3), Password: os.Getenv("SLUICE_ETCD_PASSWORD")}
	if pf := get(4); pf != "" {
		p, err := etcdsource.ReadPasswordFile(pf)
		if err != nil {
			return a, err
		}
		a.Password = p
	}
	return a, nil
}
