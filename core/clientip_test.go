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
		{"X-Forwarded-For first", proxy, []string{"X-Real-IP", "6.6.6.6", "X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
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
