//go:build race

package chilimit_test

// raceEnabled is set under -race, whose sync.Pool drops items at random,
// so that chi's pooled route contexts make allocation counts noisy.
const raceEnabled = true
