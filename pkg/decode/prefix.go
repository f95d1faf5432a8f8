package decode

import (
	"net/netip"
	"strings"
)

// Prefix reads an address range as the handlers' options write it: a
// CIDR ("10.0.0.0/8", host bits cleared) or a single address, which is
// its own /32 or /128.
func Prefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
