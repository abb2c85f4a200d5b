package core

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ByClientIP returns a key function for apps behind reverse proxies or load
// balancers: the client's IP as the proxies report it, grouped by /64 for
// IPv6 as ByIP does.
//
// trustedProxies lists the proxies' addresses, as IPs ("10.0.0.7") or CIDR
// prefixes ("10.0.0.0/8", "fd00::/8"). Forwarded headers count only when the
// connection's peer is one of them; a request straight from anyone else is
// keyed by its peer address, whatever headers it sends, so a client cannot
// escape its budget by forging them.
//
// From a trusted peer, the first of these headers present is read:
// X-Forwarded-For, then Forwarded (RFC 7239), then X-Real-IP. The chains of
// the first two are read from the right, skipping trusted hops, and the
// first untrusted hop is the client; a hop that is not an IP ("unknown", an
// obfuscated name) ends the search at the nearest trusted hop. This order is
// safe with proxies that append to X-Forwarded-For (nginx, HAProxy, Envoy and
// the cloud load balancers): a client's forged entries are on the left of
// the ones the proxies add. If your proxies write only Forwarded or only
// X-Real-IP, and pass a client's X-Forwarded-For through, use
// ByClientIPHeader to read only the header they write.
//
// The error quotes an entry that is neither an IP nor a prefix.
func ByClientIP(trustedProxies ...string) (KeyFunc, error) {
	return newClientIP("", trustedProxies)
}

// MustByClientIP is ByClientIP for package-level set-up: it panics on a bad
// entry.
func MustByClientIP(trustedProxies ...string) KeyFunc {
	k, err := ByClientIP(trustedProxies...)
	if err != nil {
		panic(err)
	}
	return k
}

// ByClientIPHeader is ByClientIP reading only header, which must be
// "X-Forwarded-For", "Forwarded" or "X-Real-IP": the one your proxies set.
func ByClientIPHeader(header string, trustedProxies ...string) (KeyFunc, error) {
	h := http.CanonicalHeaderKey(header)
	switch h {
	case hdrXFF, hdrForwarded, hdrRealIP:
	default:
		return nil, fmt.Errorf("limitkit: ByClientIPHeader(%q): the header must be X-Forwarded-For, Forwarded or X-Real-IP", header)
	}
	return newClientIP(h, trustedProxies)
}

const (
	hdrXFF       = "X-Forwarded-For"
	hdrForwarded = "Forwarded"
	hdrRealIP    = "X-Real-Ip"
)

type clientIP struct {
	header  string // "" for the first present of the three
	trusted []netip.Prefix
}

func newClientIP(header string, proxies []string) (KeyFunc, error) {
	if len(proxies) == 0 {
		return nil, fmt.Errorf("limitkit: ByClientIP needs the addresses of the trusted proxies; without proxies, use ByIP")
	}
	c := &clientIP{header: header}
	for _, s := range proxies {
		p, err := parseTrusted(s)
		if err != nil {
			return nil, err
		}
		c.trusted = append(c.trusted, p)
	}
	return c.key, nil
}

func parseTrusted(s string) (netip.Prefix, error) {
	t := strings.TrimSpace(s)
	if strings.IndexByte(t, '/') >= 0 {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("limitkit: trusted proxy %q is not a valid CIDR prefix (such as \"10.0.0.0/8\"): %v", s, err)
		}
		p = p.Masked()
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p, nil
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("limitkit: trusted proxy %q is neither an IP address nor a CIDR prefix", s)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (c *clientIP) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (c *clientIP) key(r *http.Request) (string, error) {
	peer, host, isIP := parsePeer(r.RemoteAddr)
	if !isIP {
		return bound(r.RemoteAddr), nil
	}
	peer = peer.Unmap().WithZone("")
	if !c.isTrusted(peer) {
		return addrIdentity(peer, host), nil
	}
	h := r.Header
	var (
		a    netip.Addr
		text string
		ok   bool
	)
	switch {
	case c.header == hdrXFF || c.header == "" && len(h[hdrXFF]) > 0:
		a, text, ok = c.rightmostUntrusted(h[hdrXFF], false)
	case c.header == hdrForwarded || c.header == "" && len(h[hdrForwarded]) > 0:
		a, text, ok = c.rightmostUntrusted(h[hdrForwarded], true)
	case c.header == hdrRealIP || c.header == "" && len(h[hdrRealIP]) > 0:
		if v := h[hdrRealIP]; len(v) > 0 {
			a, text, ok = parseHop(strings.TrimSpace(v[len(v)-1]))
		}
	}
	if !ok {
		return addrIdentity(peer, host), nil
	}
	return addrIdentity(a, text), nil
}

// rightmostUntrusted walks the hops of a forwarding chain from the right,
// the proxies' end, and returns the first that is not a trusted proxy. A hop
// that is not an address breaks the chain: nothing to its left can be
// believed, so the nearest trusted hop is the client as far as we know.
// forwarded says the lines are Forwarded headers rather than
// X-Forwarded-For.
func (c *clientIP) rightmostUntrusted(lines []string, forwarded bool) (netip.Addr, string, bool) {
	var (
		near     netip.Addr
		nearText string
		buf      [8]string // a line's hops, without an allocation for short chains
	)
	for i := len(lines) - 1; i >= 0; i-- {
		var hops []string
		if forwarded {
			hops = appendForwarded(buf[:0], lines[i])
		} else {
			hops = appendList(buf[:0], lines[i])
		}
		for j := len(hops) - 1; j >= 0; j-- {
			hop := strings.TrimSpace(hops[j])
			if hop == "" {
				continue
			}
			a, text, ok := parseHop(hop)
			if !ok {
				return near, nearText, near.IsValid()
			}
			if !c.isTrusted(a) {
				return a, text, true
			}
			near, nearText = a, text
		}
	}
	return near, nearText, near.IsValid()
}

// appendList appends the comma-separated items of s to dst.
func appendList(dst []string, s string) []string {
	for {
		item, rest, found := strings.Cut(s, ",")
		dst = append(dst, item)
		if !found {
			return dst
		}
		s = rest
	}
}

// appendForwarded appends the for= value of each element of a Forwarded
// header (RFC 7239) to dst, in order; an element without one, or with an
// empty one, yields "unknown".
func appendForwarded(dst []string, s string) []string {
	for more := true; more; {
		var elem string
		elem, s, more = cutQuoted(s, ',')
		var v string
		for pmore := true; pmore; {
			var pair string
			pair, elem, pmore = cutQuoted(elem, ';')
			k, val, found := strings.Cut(strings.TrimSpace(pair), "=")
			if found && strings.EqualFold(k, "for") {
				v = strings.Trim(val, `"`)
			}
		}
		if v == "" {
			v = "unknown" // missing or empty: breaks the chain
		}
		dst = append(dst, v)
	}
	return dst
}

// cutQuoted cuts s around the first sep outside double-quoted strings.
func cutQuoted(s string, sep byte) (before, after string, found bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case '\\':
			if quoted {
				i++
			}
		case sep:
			if !quoted {
				return s[:i], s[i+1:], true
			}
		}
	}
	return s, "", false
}

// parseHop reads one hop of a chain: an address, with or without a port,
// IPv6 possibly in brackets.
func parseHop(hop string) (netip.Addr, string, bool) {
	text := hop
	if a, err := netip.ParseAddr(text); err == nil {
		return a.Unmap().WithZone(""), text, true
	}
	if h, _, err := net.SplitHostPort(hop); err == nil {
		text = h
	} else if strings.HasPrefix(hop, "[") && strings.HasSuffix(hop, "]") {
		text = hop[1 : len(hop)-1]
	}
	a, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Addr{}, "", false
	}
	return a.Unmap().WithZone(""), text, true
}
