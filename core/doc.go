// Package core is limitkit's framework-neutral rate limiter.
package core
