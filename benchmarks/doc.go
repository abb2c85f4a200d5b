// Package benchmarks compares limitkit with peer rate-limiting libraries.
//
// It is its own module so that the peers never enter the dependency graph of
// limitkit's users. It holds only benchmarks; run.sh runs them and prints a
// benchstat table per cell (key count × serial or parallel) with every
// library side by side.
package benchmarks
