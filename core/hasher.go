package core

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"sync"
)

// MinIdentitySecret is the shortest secret NewIdentityHasher accepts, in
// bytes: 128 bits, as many as an identity keeps of its hash.
const MinIdentitySecret = 16

// IdentityHasher hashes the secrets requests are identified by (API keys,
// bearer tokens, session ids) with a secret of the app's: the identity is
// the hex of the first 128 bits of the HMAC-SHA-256 of the value, keyed by
// that secret. Build one at start-up with NewIdentityHasher and use its key
// functions in place of ByHeader and ByBearerToken; it is safe for
// concurrent use.
//
// What each choice protects against: ByHeader, ByBearerToken and
// HashIdentity hash without a key, which keeps the raw secret out of the
// store, logs and metrics, but anyone who can read a store key (a Redis
// dump, a replica, a log of keys) recovers a short or guessable secret by
// hashing candidates: a 6-digit API key falls in well under a second. An
// IdentityHasher's identities reveal nothing, however short the secret
// behind them, for as long as its own secret stays secret; a leaked secret
// makes them no stronger than the unkeyed ones. Every process that shares a
// store needs the same secret to share budgets, and changing the secret
// starts every hashed identity on a fresh budget.
type IdentityHasher struct {
	pool sync.Pool // of *keyedHash: an HMAC's state is not safe to share
}

// keyedHash is one goroutine's HMAC state and scratch space, reused so that
// hashing allocates only the identity.
type keyedHash struct {
	mac hash.Hash
	buf []byte // the value, as Write takes bytes; cleared after each use
	sum []byte
}

// NewIdentityHasher returns an IdentityHasher keyed by secret, which must
// be at least MinIdentitySecret bytes of random data (32 is a good size),
// kept with the app's other secrets rather than in its code. secret is
// copied. The error, for a short secret, gives its length, never the
// secret.
func NewIdentityHasher(secret []byte) (*IdentityHasher, error) {
	if len(secret) < MinIdentitySecret {
		return nil, fmt.Errorf("limitkit: NewIdentityHasher: the secret is %d bytes; it must be at least %d random bytes (32 is a good size)", len(secret), MinIdentitySecret)
	}
	key := append([]byte(nil), secret...)
	h := &IdentityHasher{}
	h.pool.New = func() any { return &keyedHash{mac: hmac.New(sha256.New, key)} }
	return h, nil
}

// MustNewIdentityHasher is NewIdentityHasher for package-level set-up: it
// panics with the error, which does not contain the secret.
func MustNewIdentityHasher(secret []byte) *IdentityHasher {
	h, err := NewIdentityHasher(secret)
	if err != nil {
		panic(err)
	}
	return h
}

const errNilHasher = "limitkit: the IdentityHasher is nil: check the error NewIdentityHasher returned"

// Hash returns the identity under which value, a secret such as an API key,
// is stored: the keyed counterpart of HashIdentity, for custom key
// functions that read secrets.
func (h *IdentityHasher) Hash(value string) string {
	if h == nil {
		panic(errNilHasher)
	}
	k := h.pool.Get().(*keyedHash)
	k.mac.Reset()
	k.buf = append(k.buf[:0], value...)
	k.mac.Write(k.buf)
	clear(k.buf) // the pool should not hold on to a client's secret
	k.sum = k.mac.Sum(k.sum[:0])
	id := hex.EncodeToString(k.sum[:16])
	if cap(k.buf) > 1<<12 {
		k.buf = nil // a huge value's buffer is not worth keeping
	}
	h.pool.Put(k)
	return id
}

// ByHeader is core.ByHeader with the value hashed by h: requests are
// identified by the named header, such as "X-API-Key", and a request
// without it is an error.
func (h *IdentityHasher) ByHeader(name string) KeyFunc {
	if h == nil {
		panic(errNilHasher)
	}
	return byHeader(name, h.Hash)
}

// ByBearerToken is core.ByBearerToken with the token hashed by h, a key
// function to pass as a method value, core.WithKey(h.ByBearerToken):
// requests are identified by the token of an "Authorization: Bearer
// <token>" header, and a request without one is an error.
func (h *IdentityHasher) ByBearerToken(r *http.Request) (string, error) {
	tok, err := bearerTokenOf(r)
	if err != nil {
		return "", err
	}
	return h.Hash(tok), nil
}
