package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/limitkit/limitkit/core"
)

// maxTagLen is the longest key used verbatim inside the hash tag; longer
// keys are hashed, which bounds every Redis key this store writes.
const maxTagLen = 200

// hashed marks a tag that is a key's SHA-256. Keys that begin with it are
// hashed too, so a verbatim key can never pass for another key's hash.
const hashed = "#"

// tag returns the part of a Redis key between { and }: the caller's key
// itself when that is safe, else "#" and the key's SHA-256 in hex. Redis
// Cluster hashes only the tag, so every key of one decision lands in one
// slot; a key holding "{" or "}" would end the tag early, and an empty tag
// would make Cluster hash the whole name, so those are hashed as well.
func tag(key string) string {
	if key == "" || len(key) > maxTagLen || strings.ContainsAny(key, "{}") || strings.HasPrefix(key, hashed) {
		sum := sha256.Sum256([]byte(key))
		return hashed + hex.EncodeToString(sum[:])
	}
	return key
}

// base returns the common start of every Redis key of key under a rule of
// alg with n limits: prefix{tag}:alg:n:. The number of limits is part of the
// name so that a rule that gains or loses a limit starts afresh, as it does
// in the memory store.
func (s *Store) base(key string, alg core.Algorithm, n int) string {
	var b strings.Builder
	t := tag(key)
	b.Grow(len(s.prefix) + len(t) + 40)
	b.WriteString(s.prefix)
	b.WriteByte('{')
	b.WriteString(t)
	b.WriteString("}:")
	b.WriteString(alg.String())
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(n))
	b.WriteByte(':')
	return b.String()
}

// keys appends to dst the Redis keys of key's limits under a rule of alg
// with n limits, as the algorithm's script expects them: base+i, and for
// the sliding window log also base+i+":sum".
func (s *Store) keys(dst []string, key string, alg core.Algorithm, n int) []string {
	base := s.base(key, alg, n)
	for i := range n {
		k := base + strconv.Itoa(i)
		dst = append(dst, k)
		if alg == core.SlidingWindowLog {
			dst = append(dst, k+":sum")
		}
	}
	return dst
}
