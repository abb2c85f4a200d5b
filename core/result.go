package core

// What a check tells its caller: the verdict, the result with its status,
// message and JSON body, and the default refusal.

import (
	"context"
	"errors"
	"net/http"
	"strconv"
)

// Verdict says what to do with a request after Enforce.
type Verdict uint8

// The verdicts.
const (
	// Serve: run the handler. The headers are set.
	Serve Verdict = iota + 1
	// Refuse: answer with Result.Status (see Result), by Refuse or in the
	// framework's idiom. The headers are set.
	Refuse
	// Gone: the client went away (its request's context was cancelled)
	// during the check or while its request was held; write no body.
	// Result.Status is StatusClientClosedRequest, to end the request with,
	// so that access logs tell these apart and net/http does not answer
	// an empty 200. A request whose context passed a deadline, which is the
	// server's (http.TimeoutHandler, a timeout middleware), is not Gone but
	// refused with 503: its client still waits for an answer.
	Gone
)

// StatusClientClosedRequest is the status of a Gone result (nginx's 499):
// nothing reaches the client, but access logs can tell these requests apart.
const StatusClientClosedRequest = 499

// Result is the outcome of Enforce.
type Result struct {
	Verdict Verdict
	// Status is the HTTP status of a refusal, or of a request that is Gone:
	//   - 429 Too Many Requests: the limit refused; Retry-After is set.
	//   - 413 Content Too Large: the limit refused a cost that can never fit
	//     (Decision.Never). Waiting cannot help, so there is no Retry-After;
	//     clients retry a 429, but not a 413 sent without one.
	//   - 503 Service Unavailable: the store failed under FailClosed
	//     (Retry-After is the probe interval); the limiter is closed (Err
	//     wraps ErrClosed); or the request's context passed its deadline,
	//     set by a server-side timeout, during the check or the hold.
	//   - 500 Internal Server Error: the limiter cannot enforce the rule, a
	//     mistake in set-up, reported once (see EventConfigError).
	//   - 400 Bad Request: the key function failed under KeyErrorRefuse.
	//   - StatusClientClosedRequest: the client went away (Gone).
	// Zero otherwise.
	Status int
	// Decision is the decision, when a store made one (the limiter's, or
	// the fallback); zero for exempt requests and those the failure policy
	// let through or refused undecided.
	Decision Decision
	// DecidedBy says whether the store or the failure policy decided.
	DecidedBy Action
	// Err says why a check did not go as usual, even if the request is
	// served: the store's error, the key function's, or the request
	// context's.
	Err error

	// reservation is the charge Finish settles, under WithChargeWhen.
	reservation *Reservation
}

// OverLimit reports whether the limit refused the request: a 429, or a 413
// for a cost that can never fit. These are the refusals that deny handlers
// (WithDenyHandler, and the adapters' own) replace.
func (r Result) OverLimit() bool {
	return r.Verdict == Refuse && (r.Status == http.StatusTooManyRequests || r.Status == http.StatusRequestEntityTooLarge)
}

// Message is the refusal's reason in a sentence, for an error response.
func (r Result) Message() string {
	switch {
	case r.Verdict != Refuse:
		return ""
	case r.Status == http.StatusRequestEntityTooLarge:
		return "request exceeds the rate limit and can never be admitted"
	case r.Status == http.StatusTooManyRequests:
		return "rate limit exceeded"
	case r.Status == http.StatusInternalServerError:
		return "rate limit cannot be enforced"
	case r.Status == http.StatusServiceUnavailable && r.DecidedBy != ActionFailClosed && errors.Is(r.Err, context.DeadlineExceeded):
		return "request timed out in the rate limiter"
	case r.Status == http.StatusServiceUnavailable:
		return "rate limiter unavailable"
	default:
		return "cannot identify the client for rate limiting"
	}
}

// Body is the default JSON body of a refusal, such as
// {"error":"rate limit exceeded","limit":"5/minute","retry_after":12}.
// retry_after is left out when waiting cannot help (Decision.Never, a 413).
func (r Result) Body() []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"error":`...)
	b = strconv.AppendQuote(b, r.Message())
	if r.OverLimit() {
		b = append(b, `,"limit":`...)
		b = strconv.AppendQuote(b, r.Decision.Limit.String())
		if !r.Decision.Never {
			b = append(b, `,"retry_after":`...)
			b = strconv.AppendInt(b, max(ceilSeconds(r.Decision.RetryAfter), 1), 10)
		}
	}
	return append(b, "}\n"...)
}

// ended is res for a request whose context ended, with err, before it could
// be served. A deadline is the server's: no client sends one over HTTP, so
// it was set by http.TimeoutHandler or a timeout middleware, and the client
// is still there; it gets 503, as http.TimeoutHandler answers, with no
// Retry-After. The slot a held request was given is given back to the
// store (see Middleware.Enforce).
func ended(res Result, err error) Result {
	res.Err = err
	if errors.Is(err, context.DeadlineExceeded) {
		res.Verdict, res.Status = Refuse, http.StatusServiceUnavailable
		return res
	}
	res.Verdict, res.Status = Gone, StatusClientClosedRequest
	return res
}

type resultKey struct{}

// DecisionFrom returns the decision that refused the request whose context
// ctx is, inside a handler given to WithDenyHandler.
func DecisionFrom(ctx context.Context) (Decision, bool) {
	res, ok := ctx.Value(resultKey{}).(Result)
	return res.Decision, ok
}

// Refuse writes the response to a request Enforce refused: the deny handler
// for a refusal by the limit (res.OverLimit) if WithDenyHandler gave one,
// else res.Status with res.Body as JSON. The headers Enforce wrote are kept.
func (m *Middleware) Refuse(w http.ResponseWriter, r *http.Request, res Result) {
	if res.OverLimit() && m.deny != nil {
		m.deny.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), resultKey{}, res)))
		return
	}
	status := res.Status
	if status == 0 {
		status = http.StatusTooManyRequests
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(status)
	_, _ = w.Write(res.Body())
}
