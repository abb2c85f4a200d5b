package main

import (
	"testing"

	"github.com/limitkit/limitkit/examples/internal/quotestest"
)

// TestQuoteAPI drives the app end to end through its limits, with the same
// suite as the other examples.
func TestQuoteAPI(t *testing.T) { quotestest.Run(t, newRouter) }
