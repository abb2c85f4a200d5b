//go:build race

package ginlimit_test

// raceEnabled is set under -race, whose sync.Pool drops items at random,
// so that Gin's pooled contexts make allocation counts noisy.
const raceEnabled = true
