//go:build race

package core

// raceEnabled is set under -race, whose sync.Pool drops items at random,
// so that pooled state makes allocation counts noisy.
const raceEnabled = true
