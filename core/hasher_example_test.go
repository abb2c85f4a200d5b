package core_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/limitkit/limitkit/core"
)

// An IdentityHasher keys API keys by an HMAC with the app's secret, so that
// a short key cannot be recovered from the store by hashing candidates.
func ExampleNewIdentityHasher() {
	// In an app, read the secret from its configuration: at least 16
	// random bytes, the same in every instance that shares the store.
	secret := []byte("example secret: use 32 random bytes")
	hasher, err := core.NewIdentityHasher(secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	limiter := core.New(core.WithClock(stopped))
	defer limiter.Close()
	m := core.MustNewMiddleware("1/minute", core.WithLimiter(limiter),
		core.WithKey(hasher.ByHeader("X-API-Key")), core.WithKeyErrorPolicy(core.KeyErrorRefuse))
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

	for _, key := range []string{"123456", "123456", "654321"} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/quote", nil)
		r.Header.Set("X-API-Key", key)
		h.ServeHTTP(w, r)
		fmt.Println(key, w.Code)
	}

	_, err = core.NewIdentityHasher([]byte("too short"))
	fmt.Println(err)
	// Output:
	// 123456 200
	// 123456 429
	// 654321 200
	// limitkit: NewIdentityHasher: the secret is 9 bytes; it must be at least 16 random bytes (32 is a good size)
}

// Custom key functions that read a secret return its keyed hash.
func ExampleIdentityHasher_Hash() {
	hasher := core.MustNewIdentityHasher([]byte("example secret: use 32 random bytes"))
	bySession := func(r *http.Request) (string, error) {
		c, err := r.Cookie("session")
		if err != nil {
			return "", err
		}
		return hasher.Hash(c.Value), nil
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "session", Value: "s3cr3t"})
	id, _ := bySession(r)
	fmt.Println(len(id), id == core.HashIdentity("s3cr3t"))
	// Output:
	// 32 false
}
