package core

import (
	"context"
	"strconv"
)

// MemoryInspector is a memory store that storetest can inspect: it names
// every entry whose expiry lies beyond the longest its state can last, which
// would keep the entry from ever being swept as idle.
type MemoryInspector struct{ *MemoryStore }

// Unexpiring implements storetest.Expirer.
func (m MemoryInspector) Unexpiring(context.Context) ([]string, error) {
	var out []string
	now := m.now()
	for i := range m.mask + 1 {
		sh := &m.shards[i]
		sh.mu.Lock()
		check := func(e *entry) {
			life := int64(0)
			er := e.rule.Load()
			for _, s := range er.limits() {
				switch er.alg {
				case SlidingWindowCounter:
					life = max(life, 2*s.window)
				case TokenBucket, LeakyBucket:
					life = max(life, s.depth)
				default:
					life = max(life, s.window)
				}
			}
			if e.expires(er) > now+life {
				out = append(out, e.key+" expires in "+strconv.FormatInt(e.expires(er)-now, 10)+"µs")
			}
		}
		sh.each(func(_ *slot, e *entry) bool {
			e.mu.Lock()
			check(e)
			e.mu.Unlock()
			return true
		})
		sh.mu.Unlock()
	}
	return out, nil
}
