package redisstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
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

// keys appends to dst the Redis keys of key's limits under a rule of the
// given shape (core.Rule.Shape) with n limits, one per limit:
// prefix{tag}:shape:i, the shape in 16 hex digits. A key's state belongs to
// one rule shape, as in the memory store, so two rules checked on one key
// never read each other's state.
func (s *Store) keys(dst []string, key string, shape uint64, n int) []string {
	t := tag(key)
	var sb [8]byte
	binary.BigEndian.PutUint64(sb[:], shape)
	for i := range n {
		var b strings.Builder
		b.Grow(len(s.prefix) + len(t) + 2*len(sb) + 6)
		b.WriteString(s.prefix)
		b.WriteByte('{')
		b.WriteString(t)
		b.WriteString("}:")
		var hx [16]byte
		hex.Encode(hx[:], sb[:])
		b.Write(hx[:])
		b.WriteByte(':')
		var is [20]byte
		b.Write(strconv.AppendInt(is[:0], int64(i), 10))
		dst = append(dst, b.String())
	}
	return dst
}
