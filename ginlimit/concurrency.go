package ginlimit

import (
	"github.com/gin-gonic/gin"
	"github.com/limitkit/limitkit/core"
)

// Concurrency returns a Gin middleware that lets at most n requests per
// client be in flight at once (see core.ConcurrencyMiddleware): a request
// over it is aborted with 429 and Retry-After: 1, or held for a slot up to
// core.WithConcurrencyWait. The request's slot is given back when the rest
// of the chain returns, also when it panics. The options are those of
// Limit (Key, Exempt, OnDeny, core.WithName, ...) and core.WithLeaseTTL;
// it panics on a bad n or option, naming the call, such as
// `ginlimit.Concurrency(0): ...`.
//
//	r.POST("/reports", ginlimit.Concurrency(2), buildReport)
func Concurrency(n int64, opts ...Option) gin.HandlerFunc {
	return core.MustAdaptConcurrency[*gin.Context]("ginlimit.Concurrency", 1, n, opts, concurrencyHandler)
}

// NewConcurrency is Concurrency returning an error, rather than panicking,
// for a bad n or option.
func NewConcurrency(n int64, opts ...Option) (gin.HandlerFunc, error) {
	return core.AdaptConcurrency[*gin.Context]("ginlimit.NewConcurrency", 1, n, opts, concurrencyHandler)
}

func concurrencyHandler(cm *core.ConcurrencyMiddleware) gin.HandlerFunc {
	return func(c *gin.Context) {
		res, lease := cm.EnforceWith(c.Request, c.Writer.Header(), c)
		switch res.Verdict {
		case core.Serve:
			defer cm.Release(c.Request, lease)
			c.Next() // the slot is held while the rest of the chain runs
		case core.Refuse:
			c.Abort()
			if answered, err := cm.DenyNatively(c, res); answered && err == nil {
				return
			}
			cm.Refuse(c.Writer, c.Request, res)
		default: // core.Gone
			c.AbortWithStatus(res.Status)
		}
	}
}
