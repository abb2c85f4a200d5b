package core

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// An entry keeps its key's text beside it when the key is short enough, so
// that confirming a match costs no cache miss of its own; the text must be
// the key's, whole, at every length and however the key is split, and must
// live as long as the entry.
func TestNewEntry_keepsTheKeyWholeAndShortKeysBesideTheEntry(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 200} {
		whole := strings.Repeat("k", n/2) + strings.Repeat("i", n-n/2)
		for _, split := range []int{0, n / 2, n} {
			key := storeKey{prefix: whole[:split], id: whole[split:]}
			e := newEntry(key)
			runtime.GC() // the text must not be collected while e lives
			if e.key != whole || !key.is(e.key) {
				t.Fatalf("len %d split %d: entry key %q; want %q", n, split, e.key, whole)
			}
			start := uintptr(unsafe.Pointer(e))
			text := uintptr(unsafe.Pointer(unsafe.StringData(e.key)))
			beside := text >= start+unsafe.Sizeof(entry{}) && text+uintptr(n) <= start+unsafe.Sizeof(entry48{})
			if want := n > 0 && n <= 48; beside != want {
				t.Errorf("len %d split %d: key text beside the entry %v; want %v", n, split, beside, want)
			}
			runtime.KeepAlive(e)
		}
	}
}
