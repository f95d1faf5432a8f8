// Package all links every bundled handler into the binary. A new plugin
// adds one line here.
package all

import (
	_ "github.com/sluice-dev/sluice/plugins/echo"           // echo
	_ "github.com/sluice-dev/sluice/plugins/log"            // log
	_ "github.com/sluice-dev/sluice/plugins/proxy"          // proxy
	_ "github.com/sluice-dev/sluice/plugins/proxy_protocol" // proxy_protocol
	_ "github.com/sluice-dev/sluice/plugins/ratelimit"      // ratelimit
	_ "github.com/sluice-dev/sluice/plugins/route"          // route
	_ "github.com/sluice-dev/sluice/plugins/tls"            // tls
)
