package core

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
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
// From a trusted peer, every one of these headers present is read:
// X-Forwarded-For, Forwarded (RFC 7239) and X-Real-IP. The chains of the
// first two are read from the right, skipping trusted hops, and the first
// untrusted hop is the client; a hop that is not an IP ("unknown", an
// obfuscated name) ends the search at the nearest trusted hop. That is safe
// with proxies that append to X-Forwarded-For (nginx, HAProxy, Envoy and the
// cloud load balancers): a client's forged entries are on the left of the
// ones the proxies add. A header that names only trusted hops has no say;
// the clients the others name must agree, since the app cannot tell which
// header its proxies write and a client can forge the rest. When they
// disagree (behind a proxy that sets X-Real-IP and passes the client's own
// X-Forwarded-For through, say), the request is counted by the peer, the
// proxy, which no client chose, and a warning is logged once: name the
// header with ByClientIPHeader.
//
// Forwarded is parsed strictly, as RFC 7239 and RFC 7230 §3.2.6 write it:
// token or quoted-string values, backslash escapes, one for= per element,
// IPv6 and ports only in quotes. Its elements are read from the right, so
// an element a proxy appends ends where the proxy's text says, whatever the
// client wrote before it (an unclosed quote cannot swallow it). An element
// that does not parse is treated as a hop that is not an IP: the search ends
// at the nearest trusted hop to its right, or the peer when there is none,
// so a malformed header never lets a client choose its identity.
//
// If your proxies write only Forwarded or only X-Real-IP, and pass a
// client's X-Forwarded-For through, use ByClientIPHeader to read only the
// header they write: clients behind forward proxies of their own send
// X-Forwarded-For too, and with ByClientIP would share the proxy's budget. X-Real-IP is not a chain: its last line is read, so a
// proxy must set it, or add its own line after the client's.
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
	header  string // "" for every one of the three that is present
	trusted []netip.Prefix
	warned  atomic.Bool // the disagreement of headers has been logged
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
	if c.header != "" {
		a, text, ok := c.resolve(r.Header, c.header)
		if !ok {
			return addrIdentity(peer, host), nil
		}
		return addrIdentity(a, text), nil
	}
	// Every header present gives its client; one that gives only a trusted
	// hop has no opinion. The clients named must agree: which header the
	// proxies write, the app cannot tell, and a client can forge the others
	// (an X-Forwarded-For passed through by a proxy that sets only
	// X-Real-IP, or an X-Real-IP behind one that appends to
	// X-Forwarded-For). Where they disagree, the peer is the one identity
	// no client chose.
	var (
		a, first    netip.Addr
		text, ftext string
		named       bool
	)
	for _, name := range forwardedHeaders {
		if len(r.Header[name]) == 0 {
			continue
		}
		x, xtext, ok := c.resolve(r.Header, name)
		if !ok {
			continue
		}
		if !first.IsValid() {
			first, ftext = x, xtext
		}
		if c.isTrusted(x) {
			continue
		}
		if named && x != a {
			c.disagree(name)
			return addrIdentity(peer, host), nil
		}
		a, text, named = x, xtext, true
	}
	switch {
	case named:
		return addrIdentity(a, text), nil
	case first.IsValid():
		return addrIdentity(first, ftext), nil // only trusted hops: the nearest
	}
	return addrIdentity(peer, host), nil
}

// forwardedHeaders are the headers ByClientIP reads, in the order it reads
// them.
var forwardedHeaders = [...]string{hdrXFF, hdrForwarded, hdrRealIP}

// resolve reads the client that header names: the rightmost untrusted hop
// of a chain, or X-Real-IP's last line.
func (c *clientIP) resolve(h http.Header, header string) (netip.Addr, string, bool) {
	switch header {
	case hdrXFF:
		return c.rightmostUntrusted(h[hdrXFF], false)
	case hdrForwarded:
		return c.rightmostUntrusted(h[hdrForwarded], true)
	}
	if v := h[hdrRealIP]; len(v) > 0 {
		return parseHop(strings.TrimSpace(v[len(v)-1]))
	}
	return netip.Addr{}, "", false
}

// disagree logs, once per key function, that the forwarded headers of a
// request named different clients.
func (c *clientIP) disagree(header string) {
	if c.warned.CompareAndSwap(false, true) {
		slog.Default().Warn("limitkit: ByClientIP: the forwarded headers of a request name different clients, so one of them is forged; such requests are counted by the proxy's address until ByClientIPHeader names the one header your proxies set (logged once)",
			"header", header)
	}
}

// rightmostUntrusted walks the hops of a forwarding chain from the right,
// the proxies' end, and returns the first that is not a trusted proxy. A hop
// that is not an address, or a Forwarded element that does not parse,
// breaks the chain: nothing to its left can be believed, so the nearest
// trusted hop is the client as far as we know. forwarded says the lines are
// Forwarded headers rather than X-Forwarded-For.
//
// Reading from the right is what makes a client's forgeries harmless: the
// proxies' hops are the end of the line, and each is cut off by what it
// holds alone, never by anything a client wrote to its left (an unclosed
// quote, say).
func (c *clientIP) rightmostUntrusted(lines []string, forwarded bool) (netip.Addr, string, bool) {
	var (
		near     netip.Addr
		nearText string
	)
	for i := len(lines) - 1; i >= 0; i-- {
		for line := lines[i]; line != ""; {
			var hop string
			if forwarded {
				var kind element
				line, hop, kind = lastForwarded(line)
				switch kind {
				case elemEmpty:
					continue
				case elemNoFor, elemMalformed:
					return near, nearText, near.IsValid()
				}
			} else {
				line, hop = lastItem(line)
				hop = strings.TrimSpace(hop)
				if hop == "" {
					continue
				}
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

// lastItem cuts the last comma-separated item off s.
func lastItem(s string) (rest, item string) {
	i := strings.LastIndexByte(s, ',')
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

// element is what lastForwarded found at the end of a Forwarded line.
type element uint8

const (
	elemEmpty     element = iota // nothing but whitespace, which lists allow (RFC 7230 §7)
	elemFor                      // an element with a for= parameter
	elemNoFor                    // an element without one: the hop is not known
	elemMalformed                // not RFC 7239: nothing to its left can be read
)

// lastForwarded parses the last element of the Forwarded line s (RFC 7239
// §4), reading from the right, and returns the rest of the line, the
// element's for= value (unquoted) and what kind of element it was:
//
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair    = token "=" ( token / quoted-string )
//
// Quoted strings follow RFC 7230 §3.2.6, backslash escapes included; the
// only leniency is whitespace around ";", which some proxies write. A
// parameter given twice, a value that is neither a token nor a closed quoted
// string, or any other character out of place makes the element malformed.
func lastForwarded(s string) (rest, forValue string, kind element) {
	i := len(s)
	for {
		i = trimOWSRight(s, i)
		if i == 0 {
			return "", forValue, kind
		}
		switch s[i-1] {
		case ',':
			return s[:i-1], forValue, kind
		case ';':
			i--
			if kind == elemEmpty {
				kind = elemNoFor
			}
			continue
		}
		var value string
		if s[i-1] == '"' {
			open := openingQuote(s, i-1)
			if open < 0 {
				return "", "", elemMalformed
			}
			v, ok := unquote(s[open+1 : i-1])
			if !ok {
				return "", "", elemMalformed
			}
			value, i = v, open
		} else {
			j := tokenStart(s, i)
			if j == i {
				return "", "", elemMalformed
			}
			value, i = s[j:i], j
		}
		if i == 0 || s[i-1] != '=' {
			return "", "", elemMalformed
		}
		i--
		j := tokenStart(s, i)
		if j == i {
			return "", "", elemMalformed
		}
		name := s[j:i]
		i = trimOWSRight(s, j)
		if i > 0 && s[i-1] != ';' && s[i-1] != ',' {
			return "", "", elemMalformed // a pair starts an element or follows ";"
		}
		switch {
		case !strings.EqualFold(name, "for"):
			if kind == elemEmpty {
				kind = elemNoFor
			}
		case kind == elemFor:
			return "", "", elemMalformed // for= twice: which would be the hop?
		default:
			kind, forValue = elemFor, value
		}
	}
}

// openingQuote returns the index of the quote that opens the quoted string
// closed by the quote at s[end], or -1. It is the nearest quote to the left
// not escaped, that is not preceded by an odd run of backslashes: a run
// begins with a backslash that escapes, as the character before it is no
// backslash.
func openingQuote(s string, end int) int {
	for j := end - 1; j >= 0; j-- {
		if s[j] != '"' {
			continue
		}
		n := 0
		for k := j - 1; k >= 0 && s[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j
		}
	}
	return -1
}

// unquote returns the text of a quoted string whose content, between the
// quotes, is s: qdtext and quoted-pairs (RFC 7230 §3.2.6). ok is false if s
// is not that, such as a backslash escaping nothing or a control character.
func unquote(s string) (text string, ok bool) {
	escaped := false
	for i := 0; i < len(s); i++ {
		switch b := s[i]; {
		case b == '\\':
			if i+1 == len(s) || !isQuotedPairChar(s[i+1]) {
				return "", false
			}
			i++
			escaped = true
		case !isQDText(b):
			return "", false
		}
	}
	if !escaped {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
		}
		b = append(b, s[i])
	}
	return string(b), true
}

// tokenStart returns where the token ending at s[end] begins: end if there
// is none.
func tokenStart(s string, end int) int {
	for end > 0 && isTokenChar(s[end-1]) {
		end--
	}
	return end
}

// trimOWSRight returns end less the spaces and tabs before it.
func trimOWSRight(s string, end int) int {
	for end > 0 && (s[end-1] == ' ' || s[end-1] == '\t') {
		end--
	}
	return end
}

// isTokenChar reports whether b is a tchar of RFC 7230 §3.2.6.
func isTokenChar(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// isQDText reports whether b may stand unescaped in a quoted string.
func isQDText(b byte) bool {
	return b == '\t' || b == ' ' || b == 0x21 || 0x23 <= b && b <= 0x5b || 0x5d <= b && b <= 0x7e || b >= 0x80
}

// isQuotedPairChar reports whether b may follow a backslash in a quoted
// string.
func isQuotedPairChar(b byte) bool {
	return b == '\t' || b == ' ' || 0x21 <= b && b <= 0x7e || b >= 0x80
}

// parseHop reads one hop of a chain: an address, with or without a port,
// IPv6 possibly in brackets. The port is cut off by hand, not by
// net.SplitHostPort, whose errors would cost an allocation on every hop
// without a port.
func parseHop(hop string) (netip.Addr, string, bool) {
	text := hop
	if strings.HasPrefix(hop, "[") {
		end := strings.IndexByte(hop, ']')
		if end < 0 || end+1 < len(hop) && hop[end+1] != ':' {
			return netip.Addr{}, "", false
		}
		text = hop[1:end]
	} else if i := strings.IndexByte(hop, ':'); i >= 0 && strings.IndexByte(hop[i+1:], ':') < 0 {
		text = hop[:i] // one colon: IPv4 and a port
	}
	a, err := netip.ParseAddr(text)
	if err != nil {
		return netip.Addr{}, "", false
	}
	return a.Unmap().WithZone(""), text, true
}
