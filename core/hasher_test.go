package core

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// hmacIdentity is the identity the IdentityHasher doc promises, computed
// here the plain way.
func hmacIdentity(secret []byte, value string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func TestNewIdentityHasher_refusesShortSecretsWithoutQuotingThem(t *testing.T) {
	tests := []struct {
		name    string
		secret  string
		wantErr string
	}{
		{"no secret", "", "the secret is 0 bytes; it must be at least 16"},
		{"15 bytes", "hunter2-hunter2", "the secret is 15 bytes; it must be at least 16"},
		{"16 bytes", "hunter2-hunter2!", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewIdentityHasher([]byte(tt.secret))
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("NewIdentityHasher: %v; want a hasher", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v; want one containing %q", err, tt.wantErr)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q quotes the secret", err)
			}
			defer func() {
				p := recover()
				if p == nil || strings.Contains(fmt.Sprint(p), tt.secret) && tt.secret != "" {
					t.Errorf("MustNewIdentityHasher panicked with %v; want an error that does not quote the secret", p)
				}
			}()
			MustNewIdentityHasher([]byte(tt.secret))
		})
	}
}

func TestIdentityHasher_hashIsHMACSHA256KeyedByTheSecret(t *testing.T) {
	h := MustNewIdentityHasher(testSecret)
	other := MustNewIdentityHasher([]byte("another secret of 32 bytes......"))
	const v = "123456"
	tests := []struct {
		name      string
		got, want string
		equal     bool
	}{
		{"the HMAC-SHA-256 of the value, 128 bits in hex", h.Hash(v), hmacIdentity(testSecret, v), true},
		{"stable: another hasher with the same secret agrees", MustNewIdentityHasher(testSecret).Hash(v), h.Hash(v), true},
		{"not the unkeyed hash", h.Hash(v), HashIdentity(v), false},
		{"another secret, another identity", other.Hash(v), h.Hash(v), false},
		{"another value, another identity", h.Hash("123457"), h.Hash(v), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.got == tt.want) != tt.equal {
				t.Errorf("%q vs %q: equal = %v; want %v", tt.got, tt.want, !tt.equal, tt.equal)
			}
		})
	}
}

func TestNewIdentityHasher_copiesTheSecret(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	h := MustNewIdentityHasher(secret)
	clear(secret)
	if got, want := h.Hash("k"), hmacIdentity(testSecret, "k"); got != want {
		t.Errorf("after the caller cleared its secret: %q; want %q", got, want)
	}
}

func TestIdentityHasher_keyFunctions(t *testing.T) {
	h := MustNewIdentityHasher(testSecret)
	const secret = "sk_live_0123456789"
	tests := []struct {
		name    string
		key     KeyFunc
		header  []string
		want    string
		wantErr string
	}{
		{"header is keyed-hashed", h.ByHeader("x-api-key"), []string{"X-API-Key", secret}, hmacIdentity(testSecret, secret), ""},
		{"missing header", h.ByHeader("X-API-Key"), nil, "", "no X-Api-Key header"},
		{"bearer token is keyed-hashed", h.ByBearerToken, []string{"Authorization", "Bearer " + secret}, hmacIdentity(testSecret, secret), ""},
		{"basic auth is no bearer", h.ByBearerToken, []string{"Authorization", "Basic dXNlcjpwYXNz"}, "", "no bearer token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.key(request(client, tt.header...))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// Issue 8, finding 15: with the unkeyed hash, a short API key is found
// from its identity in the store by hashing every candidate; with the keyed one it is
// not, as long as the app's secret is kept.
func TestIdentityHasher_storeKeyDoesNotGiveAwayAShortAPIKey(t *testing.T) {
	const apiKey = "4711" // 4 digits keep the search short; 6 take ~0.1s
	tests := []struct {
		name  string
		key   KeyFunc
		found bool
	}{
		{"unkeyed ByHeader: found by brute force", ByHeader("X-API-Key"), true},
		{"keyed ByHeader: not found", MustNewIdentityHasher(testSecret).ByHeader("X-API-Key"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What the store holds after the scope: the identity, as it is.
			id, err := tt.key(request(client, "X-API-Key", apiKey))
			if err != nil || bound(id) != id {
				t.Fatalf("identity %q, %v; want one the middleware stores as it is", id, err)
			}
			found := ""
			for n := range 10000 {
				if c := fmt.Sprintf("%04d", n); HashIdentity(c) == id {
					found = c
				}
			}
			if (found == apiKey) != tt.found {
				t.Errorf("brute force over the identity %q found %q; want found = %v", id, found, tt.found)
			}
		})
	}
}

func TestIdentityHasher_isSafeForConcurrentUse(t *testing.T) {
	h := MustNewIdentityHasher(testSecret)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				v := fmt.Sprintf("key-%d-%d", g, i)
				if got, want := h.Hash(v), hmacIdentity(testSecret, v); got != want {
					errs <- fmt.Sprintf("Hash(%q) = %q; want %q", v, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestIdentityHasher_hashAllocatesOnlyTheIdentity(t *testing.T) {
	if raceEnabled {
		t.Skip("-race empties sync.Pool at random")
	}
	h := MustNewIdentityHasher(testSecret)
	h.Hash("warm the pool")
	if n := testing.AllocsPerRun(100, func() { _ = h.Hash("sk_live_0123456789") }); n > 1 {
		t.Errorf("%v allocations per hash; want 1, the identity", n)
	}
}

func TestIdentityHasher_nilPanicsNamingTheMistake(t *testing.T) {
	var h *IdentityHasher
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "NewIdentityHasher") {
			t.Errorf("panic %v; want one pointing at NewIdentityHasher's error", p)
		}
	}()
	h.ByHeader("X-API-Key")
}
