//go:build race

package echolimit_test

// raceEnabled is set under -race, whose sync.Pool drops items at random,
// so that Echo's pooled contexts make allocation counts noisy.
const raceEnabled = true
