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

// keys appends to dst the Redis keys of key's limits under a rule of alg
// with n limits, as the algorithm's script expects them:
// prefix{tag}:alg:n:i, and for the sliding window log also the same with
// ":sum". The number of limits is part of the name so that a rule that
// gains or loses a limit starts afresh, as it does in the memory store.
// Each limit's keys take one allocation: a log's list key is a prefix of
// its sum key.
func (s *Store) keys(dst []string, key string, alg core.Algorithm, n int) []string {
	t := tag(key)
	name := alg.String()
	var num [20]byte
	ns := strconv.AppendInt(num[:0], int64(n), 10)
	for i := range n {
		var b strings.Builder
		b.Grow(len(s.prefix) + len(t) + len(name) + len(ns) + 12 + 4)
		b.WriteString(s.prefix)
		b.WriteByte('{')
		b.WriteString(t)
		b.WriteString("}:")
		b.WriteString(name)
		b.WriteByte(':')
		b.Write(ns)
		b.WriteByte(':')
		var is [20]byte
		b.Write(strconv.AppendInt(is[:0], int64(i), 10))
		if alg != core.SlidingWindowLog {
			dst = append(dst, b.String())
			continue
		}
		b.WriteString(":sum")
		sum := b.String()
		dst = append(dst, sum[:len(sum)-len(":sum")], sum)
	}
	return dst
}
