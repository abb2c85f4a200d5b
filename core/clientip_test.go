package core

import (
	"strings"
	"testing"
)

func TestByClientIP(t *testing.T) {
	trusted := []string{"10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.254"}
	const proxy = "10.0.0.5:4000"
	tests := []struct {
		name   string
		remote string
		header []string
		want   string
	}{
		{"untrusted peer: headers ignored", "198.51.100.1:1", []string{"X-Forwarded-For", "1.2.3.4"}, "198.51.100.1"},
		{"untrusted peer: Forwarded ignored", "198.51.100.1:1", []string{"Forwarded", "for=1.2.3.4"}, "198.51.100.1"},
		{"untrusted peer: X-Real-IP ignored", "198.51.100.1:1", []string{"X-Real-IP", "1.2.3.4"}, "198.51.100.1"},
		{"trusted peer without headers", proxy, nil, "10.0.0.5"},
		{"one hop", proxy, []string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"forged entries on the left are skipped", proxy, []string{"X-Forwarded-For", "6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"trusted hops on the right are skipped", proxy, []string{"X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1, 192.0.2.254"}, "198.51.100.7"},
		{"several header lines read as one list", proxy, []string{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "198.51.100.7, 10.1.1.1"}, "198.51.100.7"},
		{"all hops trusted: the leftmost", proxy, []string{"X-Forwarded-For", "10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"garbage breaks the chain at the nearest trusted hop", proxy, []string{"X-Forwarded-For", "198.51.100.7, nonsense, 10.1.1.1"}, "10.1.1.1"},
		{"hop with port", proxy, []string{"X-Forwarded-For", "198.51.100.7:5555"}, "198.51.100.7"},
		{"IPv6 hop grouped by /64", proxy, []string{"X-Forwarded-For", "2001:db8:1:2::99"}, "2001:db8:1:2::/64"},
		{"IPv6 trusted peer", "[2001:db8:ffff::1]:443", []string{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"Forwarded", proxy, []string{"Forwarded", `for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https, for=10.2.2.2`}, "2001:db8:cafe::/64"},
		{"Forwarded with quoted separators", proxy, []string{"Forwarded", `for=198.51.100.7;by="a,b;c"`}, "198.51.100.7"},
		{"Forwarded obfuscated breaks the chain", proxy, []string{"Forwarded", `for=198.51.100.7, for=_hidden, for=10.3.3.3`}, "10.3.3.3"},
		{"Forwarded unknown with nothing trusted: the peer", proxy, []string{"Forwarded", `for=unknown`}, "10.0.0.5"},
		{"X-Real-IP", proxy, []string{"X-Real-IP", "198.51.100.7"}, "198.51.100.7"},
		{"X-Real-IP garbage: the peer", proxy, []string{"X-Real-IP", "nope"}, "10.0.0.5"},
		{"headers that agree", proxy, []string{"X-Real-IP", "198.51.100.7", "X-Forwarded-For", "6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"headers that disagree: the peer", proxy, []string{"X-Real-IP", "203.0.113.9", "X-Forwarded-For", "198.51.100.7"}, "10.0.0.5"},
		{"Forwarded against X-Forwarded-For: the peer", proxy, []string{"Forwarded", "for=203.0.113.9", "X-Forwarded-For", "198.51.100.7"}, "10.0.0.5"},
		{"a header naming a trusted hop has no say", proxy, []string{"X-Real-IP", "10.1.1.1", "X-Forwarded-For", "198.51.100.7, 10.1.1.1"}, "198.51.100.7"},
	}
	key := MustByClientIP(trusted...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := key(request(tt.remote, tt.header...))
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestByClientIPHeader_readsOnlyThatHeader(t *testing.T) {
	key, err := ByClientIPHeader("forwarded", "10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := key(request("10.0.0.5:1", "X-Forwarded-For", "6.6.6.6", "Forwarded", "for=198.51.100.7"))
	if got != "198.51.100.7" {
		t.Errorf("got %q; want the Forwarded client, the forged X-Forwarded-For ignored", got)
	}
}

func TestByClientIP_rejectsBadProxies(t *testing.T) {
	tests := []struct {
		header  string
		proxies []string
		want    string
	}{
		{"", []string{"10.0.0.0/8", "10.0.0.0/33"}, `"10.0.0.0/33" is not a valid CIDR prefix`},
		{"", []string{"proxy.internal"}, `"proxy.internal" is neither an IP address nor a CIDR prefix`},
		{"", nil, "needs the addresses of the trusted proxies"},
		{"X-Client-IP", []string{"10.0.0.1"}, `ByClientIPHeader("X-Client-IP")`},
	}
	for _, tt := range tests {
		var err error
		if tt.header == "" {
			_, err = ByClientIP(tt.proxies...)
		} else {
			_, err = ByClientIPHeader(tt.header, tt.proxies...)
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v; want one containing %s", tt.proxies, err, tt.want)
		}
	}
}

func TestMustByClientIP_panicsQuotingTheEntry(t *testing.T) {
	defer func() {
		if p := recover(); p == nil || !strings.Contains(p.(error).Error(), `"10.0.0.300"`) {
			t.Errorf("panic %v; want one quoting the bad entry", p)
		}
	}()
	MustByClientIP("10.0.0.300")
}

// Issue 8, finding 3: a proxy appends its element to the client's Forwarded
// line, so whatever the client wrote must not decide where the proxy's
// element begins. Elements are read strictly from the right; one that does
// not parse ends the search at the nearest trusted hop, or the peer.
func TestByClientIP_forwardedIsParsedStrictly(t *testing.T) {
	const proxy = "10.0.0.5:4000"
	tests := []struct {
		name    string
		forward []string // the Forwarded lines, as the proxy passes them on
		want    string
	}{
		{"unclosed quote does not swallow the proxy's element", []string{`for=1.1.1.1;x=", for=203.0.113.9`}, "203.0.113.9"},
		{"escaped quote does not swallow the proxy's element", []string{`for=1.1.1.1;x="\", for=203.0.113.9`}, "203.0.113.9"},
		{"quoted separators and escapes in a client's element", []string{`for=1.1.1.1;x="a\"b, for=6.6.6.6", for=203.0.113.9`}, "203.0.113.9"},
		{"escaped quote inside the proxies' own quoted value", []string{`for="198.51.100.7";by="a\",b", for=10.1.1.1`}, "198.51.100.7"},
		{"backslash escapes in a value are unescaped", []string{`for="\1\9\8.51.100.7"`}, "198.51.100.7"},
		{"parameter names are case-insensitive", []string{`For=198.51.100.7`}, "198.51.100.7"},
		{"whitespace around semicolons", []string{`for=198.51.100.7 ; proto=https`}, "198.51.100.7"},
		{"empty elements are skipped", []string{`for=198.51.100.7,, ,for=10.1.1.1`}, "198.51.100.7"},
		{"unclosed quote in the nearest element: the peer", []string{`for=198.51.100.7, for="10.3.3.3`}, "10.0.0.5"},
		{"unclosed quote: the nearest trusted hop", []string{`for=198.51.100.7, for="6.6.6.6, for=10.3.3.3`}, "10.3.3.3"},
		{"for given twice: the peer", []string{`for=6.6.6.6;for=198.51.100.7`}, "10.0.0.5"},
		{"unquoted IPv6 is not a token: the peer", []string{`for=2001:db8::1`}, "10.0.0.5"},
		{"unquoted port is not a token: the peer", []string{`for=198.51.100.7:80`}, "10.0.0.5"},
		{"backslash outside quotes: the peer", []string{`for=198.51.100.7\`}, "10.0.0.5"},
		{"control character in a quoted value: the peer", []string{"for=\"198.51.100.7\x01\""}, "10.0.0.5"},
		{"text after a quoted value: the peer", []string{`for="198.51.100.7"x`}, "10.0.0.5"},
		{"pair without a value: the peer", []string{`for=`}, "10.0.0.5"},
		{"element without for: the nearest trusted hop", []string{`for=198.51.100.7, proto=https, for=10.1.1.1`}, "10.1.1.1"},
		{"a malformed client line, the proxy's on its own", []string{`for=1.1.1.1;x="`, `for=203.0.113.9`}, "203.0.113.9"},
	}
	key := MustByClientIP("10.0.0.0/8")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(proxy)
			r.Header["Forwarded"] = tt.forward
			got, err := key(r)
			if err != nil || got != tt.want {
				t.Errorf("Forwarded %q: got %q, %v; want %q", tt.forward, got, err, tt.want)
			}
		})
	}
}

// FuzzByClientIP_clientCannotChooseItsIdentity checks the property of issue
// 8, finding 3: for any header lines a client sends, one or two trusted
// proxies that append the client's address (to the client's last line or on
// a line of their own) decide the identity. The rule allows the peer as
// well, but the parser reads the proxies' hops exactly, so the test holds it
// to the client's address.
//
// shape's bits choose: 0-1 the client's address, 2 the proxies append to
// the client's last line (else add a line), 3 two proxies (else one), 4 the
// key reads only this header (ByClientIPHeader, else ByClientIP), 5 the
// client sent the header at all. header chooses X-Forwarded-For, Forwarded
// or X-Real-IP; lines holds the client's lines, separated by "\n".
func FuzzByClientIP_clientCannotChooseItsIdentity(f *testing.F) {
	for _, lines := range []string{
		"",
		`for=1.1.1.1;x="`,
		`for=1.1.1.1;x="\`,
		`for=1.1.1.1;x="a\"b, for=6.6.6.6`,
		"1.1.1.1",
		"1.1.1.1, 10.1.1.1",
		"for=1.1.1.1\nfor=\"10.1.1.1",
		`for="[2001:db8::1]:80";by=_x;proto=https`,
		`"`,
		`\`,
		",,;;==",
		"for=unknown",
	} {
		for header := range uint8(3) {
			for _, shape := range []uint8{0b100000, 0b101101, 0b110110, 0b111011, 0} {
				f.Add(lines, header, shape)
			}
		}
	}
	clients := []struct{ ip, port string }{
		{"203.0.113.9", ""},
		{"198.51.100.7", "4711"},
		{"2001:db8:cafe::17", ""},
		{"2001:db8:beef:1::99", "443"},
	}
	const hopProxy, peer = "10.1.1.1", "10.0.0.5:4000"
	f.Fuzz(func(t *testing.T, lines string, header, shape uint8) {
		name := []string{hdrXFF, hdrForwarded, hdrRealIP}[header%3]
		client := clients[shape&3]
		sameLine, twoProxies, onlyThis, sent := shape&4 != 0, shape&8 != 0, shape&16 != 0, shape&32 != 0
		var h []string
		if sent {
			h = strings.Split(lines, "\n")
		}
		appendHop := func(ip, port string) {
			hop := ip
			switch {
			case name == hdrRealIP:
				h = append(h, ip) // not a chain: a proxy's own line, read last
				return
			case name == hdrForwarded && strings.Contains(ip, ":") && port != "":
				hop = `for="[` + ip + `]:` + port + `"`
			case name == hdrForwarded && strings.Contains(ip, ":"):
				hop = `for="[` + ip + `]"`
			case name == hdrForwarded && port != "":
				hop = `for="` + ip + ":" + port + `"`
			case name == hdrForwarded:
				hop = "for=" + ip
			}
			if sameLine && len(h) > 0 {
				h[len(h)-1] += ", " + hop
			} else {
				h = append(h, hop)
			}
		}
		appendHop(client.ip, client.port)
		if twoProxies && name != hdrRealIP {
			appendHop(hopProxy, "")
		}
		var key KeyFunc
		if onlyThis {
			key, _ = ByClientIPHeader(name, "10.0.0.0/8")
		} else {
			key = MustByClientIP("10.0.0.0/8")
		}
		r := request(peer)
		r.Header[name] = h
		got, err := key(r)
		if want := IPIdentity(client.ip); err != nil || got != want {
			t.Errorf("%s %q from %s: identity %q, %v; want the client's %q", name, h, peer, got, err, want)
		}
	})
}

// Every request behind a proxy meets the chain parser: it must not allocate,
// however long the chain.
func TestByClientIP_readsChainsWithoutAllocating(t *testing.T) {
	long := strings.Repeat("10.1.1.1, ", 20) + "10.1.1.2"
	tests := []struct{ name, header, value string }{
		{"X-Forwarded-For", "X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.1.1.1"},
		{"long X-Forwarded-For", "X-Forwarded-For", "198.51.100.7, " + long},
		{"Forwarded", "Forwarded", `for=6.6.6.6, for="198.51.100.7:4711";proto=https, for=10.1.1.1`},
		{"long Forwarded", "Forwarded", "for=198.51.100.7, " + strings.Repeat("for=10.1.1.1;by=_p, ", 20) + "for=10.1.1.2"},
	}
	key := MustByClientIP("10.0.0.0/8")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request("10.0.0.5:4000", tt.header, tt.value)
			if got, _ := key(r); got != "198.51.100.7" {
				t.Fatalf("identity %q; want 198.51.100.7", got)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = key(r) }); n != 0 {
				t.Errorf("%v allocations; want 0", n)
			}
		})
	}
}
