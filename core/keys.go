package core

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// KeyFunc says who a request comes from: the identity whose budget it spends
// (a client IP, a hashed API key, a user id). The middleware stores it under
// its scope, so the identity needs to be unique only within one rule.
//
// An identity longer than MaxIdentity bytes is hashed, so no client can make
// the store hold long keys. So is one that begins with "#" or "ip:": those
// mark the library's hashes and the budget of requests the key function
// could not identify, and no key function can pass for either (a user named
// "ip:198.51.100.7" does not spend that IP's anonymous budget). An error, or
// an empty identity, means the request cannot be identified; what happens
// then is set by WithKeyErrorPolicy (by default the request counts against
// its peer IP).
type KeyFunc func(*http.Request) (string, error)

// MaxIdentity is the longest identity kept as it is; longer ones are
// replaced by their hash.
const MaxIdentity = 128

// The identities of one rule come from three sources, and their first bytes
// keep them apart by construction, whatever a key function returns:
//
//   - "#" and 32 hex digits: a hash the library made (bound, combine) of an
//     identity too long, or one that could pass for a reserved one;
//   - "ip:" and the peer's IPIdentity: a request its key function could not
//     identify, under KeyErrorPeerIP;
//   - anything else: an identity as a key function gave it.
//
// bound hashes a key function's identity that begins with either prefix, so
// only the library makes identities in the first two namespaces. A string
// cannot say who made it, so a hash the library made inside a key function
// (Combine's, or IPIdentity's of a long address) is hashed once more when
// the middleware bounds it: stable, and paid only by those rare identities.
// HashIdentity's bare hex is a key function's identity like any other.
const (
	hashPrefix     = "#"
	fallbackPrefix = "ip:"
)

// ByIP is the default key function: the IP address of the connection's peer
// (r.RemoteAddr), with IPv6 addresses grouped by their /64 prefix, because
// one IPv6 client is usually given a whole /64 and could otherwise use a new
// address for every request.
//
// ByIP never reads forwarded headers, which any client can forge. Behind a
// reverse proxy or load balancer every client has the proxy's address; use
// ByClientIP with the proxy's addresses there. A peer address that is not an
// IP (a Unix socket) is used as it is.
func ByIP(r *http.Request) (string, error) {
	return IPIdentity(r.RemoteAddr), nil
}

// IPIdentity returns the identity ByIP gives a client at address addr: an
// IPv4 address as it is, an IPv6 address as its /64 prefix (such as
// "2001:db8:1:2::/64"), IPv4-mapped IPv6 as IPv4. A port is dropped
// ("203.0.113.7:443", "[2001:db8::1]:443"). Text that is not an IP is
// returned as it is, hashed if longer than MaxIdentity.
//
// It is for key functions that learn the client's address elsewhere, such
// as a framework's resolved client IP, so that they count clients as ByIP
// does.
func IPIdentity(addr string) string {
	if host, ok := ipv4Peer(addr); ok {
		return host
	}
	return peerIdentity(addr)
}

// peerIdentity is IPIdentity for any address, by net and netip.
func peerIdentity(addr string) string {
	if a, host, ok := parsePeer(addr); ok {
		return addrIdentity(a, host)
	}
	return bound(addr)
}

// ipv4Peer reads the most common peer address, an IPv4 address as netip
// accepts one (four decimal fields of 0 to 255, no leading zeros) with or
// without a decimal port, and returns the address without the port, which
// is its identity; ok is false for anything else, which peerIdentity then
// reads. It gives what peerIdentity gives (FuzzIPIdentity checks) in half
// the time (18 ns against 38 for "10.0.3.232:41000"), on every request of
// the default key function.
func ipv4Peer(addr string) (host string, ok bool) {
	fields, start, n := 0, 0, 0 // dots seen, where the field began, its value
	for i := 0; i < len(addr); i++ {
		switch c := addr[i]; {
		case '0' <= c && c <= '9':
			if i > start && addr[start] == '0' {
				return "", false // a leading zero
			}
			if n = n*10 + int(c-'0'); n > 255 {
				return "", false
			}
		case c == '.' && i > start && fields < 3:
			fields, start, n = fields+1, i+1, 0
		case c == ':' && i > start && fields == 3:
			for j := i + 1; j < len(addr); j++ {
				if addr[j] < '0' || addr[j] > '9' {
					return "", false
				}
			}
			return addr[:i], true
		default:
			return "", false
		}
	}
	if fields != 3 || start == len(addr) {
		return "", false
	}
	return addr, true
}

// parsePeer reads a peer address such as r.RemoteAddr, with or without a
// port: the IP, and its text without the port.
func parsePeer(addr string) (netip.Addr, string, bool) {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	return a, host, err == nil
}

// addrIdentity renders an address as an identity: IPv4 as it is, IPv6 as
// its /64. text, if not empty, is the address as the client wrote it, which
// for canonical IPv4 saves formatting it again.
func addrIdentity(a netip.Addr, text string) string {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		if text != "" && strings.IndexByte(text, ':') < 0 {
			return text // netip accepts only canonical dotted quads
		}
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// Global puts every request in one budget: a limit on the route as a whole,
// whoever calls it, for example to protect a fragile dependency.
func Global(*http.Request) (string, error) { return "*", nil }

// ByHeader identifies requests by the value of the named header, such as
// "X-API-Key". The value is hashed (SHA-256, truncated to 128 bits, in hex)
// before it reaches the store, a log or a metric, because it is usually a
// secret. A request without the header is an error.
//
// The hash has no key: it keeps the raw secret out of the store, but anyone
// who reads a store key can recover a short or guessable secret by hashing
// candidates. Unless every key is long and random, use the ByHeader of an
// IdentityHasher, keyed by a secret of the app's.
func ByHeader(name string) KeyFunc {
	return byHeader(name, HashIdentity)
}

// byHeader is ByHeader with the hash given.
func byHeader(name string, hash func(string) string) KeyFunc {
	key := http.CanonicalHeaderKey(name)
	missing := fmt.Errorf("limitkit: request has no %s header", key)
	return func(r *http.Request) (string, error) {
		v := r.Header[key]
		if len(v) == 0 || v[0] == "" {
			return "", missing
		}
		return hash(v[0]), nil
	}
}

var errNoBearer = errors.New("limitkit: request has no bearer token in its Authorization header")

// ByBearerToken is a key function, as ByIP is: it identifies requests by
// the token of an "Authorization: Bearer <token>" header, hashed without a
// key as ByHeader hashes (see there, and IdentityHasher for a keyed hash). A
// request without one is an error.
func ByBearerToken(r *http.Request) (string, error) {
	tok, err := bearerTokenOf(r)
	if err != nil {
		return "", err
	}
	return HashIdentity(tok), nil
}

// bearerTokenOf returns the token of r's "Authorization: Bearer" header.
func bearerTokenOf(r *http.Request) (string, error) {
	v := r.Header["Authorization"]
	if len(v) == 0 {
		return "", errNoBearer
	}
	const scheme = "bearer "
	s := v[0]
	if len(s) <= len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return "", errNoBearer
	}
	tok := strings.TrimSpace(s[len(scheme):])
	if tok == "" {
		return "", errNoBearer
	}
	return tok, nil
}

// ByContextValue identifies requests by a value an earlier middleware put in
// the request's context, such as the id of the authenticated user. The value
// may be a string, an integer or a fmt.Stringer; a request without it is an
// error (with the default policy, such requests count against their IP:
// anonymous clients by IP, signed-in users by id). The value is not hashed:
// do not use a secret, such as a session token, as the key.
func ByContextValue(key any) KeyFunc {
	// Made once: every anonymous request meets one of these, and fmt would
	// cost allocations on each.
	missing := fmt.Errorf("limitkit: request context has no value for %v", key)
	empty := fmt.Errorf("limitkit: request context value for %v is empty", key)
	return func(r *http.Request) (string, error) {
		switch v := r.Context().Value(key).(type) {
		case nil:
			return "", missing
		case string:
			if v == "" {
				return "", empty
			}
			return v, nil
		case int:
			return strconv.Itoa(v), nil
		case int64:
			return strconv.FormatInt(v, 10), nil
		case uint64:
			return strconv.FormatUint(v, 10), nil
		case int32:
			return strconv.FormatInt(int64(v), 10), nil
		case uint32:
			return strconv.FormatUint(uint64(v), 10), nil
		case fmt.Stringer:
			return v.String(), nil
		default:
			return "", fmt.Errorf("limitkit: request context value for %v is a %T; want a string, an integer or a fmt.Stringer", key, v)
		}
	}
}

// ByRoute identifies requests by route: the pattern a Go 1.22 ServeMux
// matched (r.Pattern, such as "GET /items/{id}"). ServeMux sets r.Pattern
// only when it dispatches, so put the middleware inside each route, and
// combine ByRoute with a client key to give each client a budget per route
// under one middleware:
//
//	m := core.MustNewMiddleware("60/minute", core.WithKey(core.Combine(core.ByIP, core.ByRoute)))
//	mux.Handle("GET /items/{id}", m.Handler(items))
//
// No client can make itself a budget by inventing a method or a path. A
// pattern that names its method is the identity as it is; one that does not
// ("/files/") is keyed as RouteIdentity keys it, with the request's method
// if it is a standard one and "OTHER" if not. A request without a pattern
// (outside a ServeMux route) is "(no route)", whatever its method and path,
// so all such requests share one budget; chilimit.ByRoute uses chi's route
// pattern instead.
func ByRoute(r *http.Request) (string, error) {
	p := r.Pattern
	if strings.IndexAny(p, " \t") > 0 {
		return bound(p), nil // the pattern names its method
	}
	return RouteIdentity(r.Method, p), nil
}

// noRoute is the route identity of every request that matched no route.
const noRoute = "(no route)"

// RouteIdentity returns the identity of a request with method method that
// the router matched to route, such as "/items/{id}": "GET /items/{id}". It
// is what ByRoute and the adapters' route keys (chilimit.Route,
// ginlimit.Route, echolimit.Route) give, for key functions of other
// routers.
//
// Neither part is the client's choice. A method other than GET, HEAD, POST,
// PUT, PATCH, DELETE, CONNECT, OPTIONS and TRACE reads "OTHER", so methods
// a client invents share one budget per route. An empty route, for a
// request that matched none (a 404, or a 405 for a path whose routes take
// other methods), gives "(no route)", whatever the method and the path, so
// a client probing paths spends one budget.
func RouteIdentity(method, route string) string {
	if route == "" {
		return noRoute
	}
	return bound(standardMethod(method) + " " + route)
}

// standardMethod returns method if it is one of RFC 9110's or PATCH, and
// "OTHER" if not.
func standardMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// Combine identifies requests by all of keys together, such as the user and
// the route: an error from any of them is the combination's error.
func Combine(keys ...KeyFunc) KeyFunc {
	keys = append([]KeyFunc(nil), keys...)
	return func(r *http.Request) (string, error) {
		return combine(len(keys), func(i int) (string, error) { return keys[i](r) })
	}
}

// combine joins the identities of n key functions, the i-th given by
// part(i), with "|"; an error from any is the combination's error. A part
// that contains "|", or could pass for a hashed part, is hashed so that two
// different combinations never read the same.
func combine(n int, part func(i int) (string, error)) (string, error) {
	var b strings.Builder
	for i := range n {
		id, err := part(i)
		if err != nil {
			return "", err
		}
		if strings.IndexByte(id, '|') >= 0 || strings.HasPrefix(id, hashPrefix) {
			id = hashPrefix + HashIdentity(id)
		}
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(id)
	}
	return bound(b.String()), nil
}

// HashIdentity returns the identity under which a secret (an API key, a
// token) is stored: the hex of the first 128 bits of its SHA-256. Custom key
// functions that read secrets should return this rather than the secret,
// or, unless the secrets are long and random, IdentityHasher.Hash: without
// a key, a short secret is recovered from its hash by trying candidates.
func HashIdentity(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:16])
}

// bound keeps identities short, and out of the namespaces the library
// reserves: one longer than MaxIdentity, or beginning with hashPrefix or
// fallbackPrefix, is replaced by its hash.
func bound(id string) string {
	if len(id) <= MaxIdentity && !strings.HasPrefix(id, hashPrefix) && !strings.HasPrefix(id, fallbackPrefix) {
		return id
	}
	return hashPrefix + HashIdentity(id)
}
