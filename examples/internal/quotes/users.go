package quotes

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
)

// User is a signed-in user.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Plan string `json:"plan"`
}

// demoUser is a row of the demo user table.
type demoUser struct {
	User
	password string
}

// users is the demo user table, by user name. Its passwords are for a demo
// only: a real app stores password hashes.
var users = map[string]demoUser{
	"alice": {User{"u-1001", "alice", "free"}, "wonderland"},
	"bob":   {User{"u-1002", "bob", "pro"}, "builder"},
}

// tokenKey signs the demo tokens. A token is the HMAC of the user id, so
// every instance of the app (sharing limits through Redis) accepts the
// tokens of every other one without a session store.
var tokenKey = []byte("limitkit demo: not a secret")

func tokenOf(u User) string {
	mac := hmac.New(sha256.New, tokenKey)
	mac.Write([]byte(u.ID))
	return u.ID + "." + hex.EncodeToString(mac.Sum(nil))
}

// LoginRequest is the body of POST /login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResponse is the answer to a successful POST /login.
type LoginResponse struct {
	Token string `json:"token"`
	Plan  string `json:"plan"`
}

// Login checks a user's password and returns the bearer token to send as
// "Authorization: Bearer <token>".
func Login(req LoginRequest) (LoginResponse, bool) {
	u, ok := users[req.Username]
	if !ok || subtle.ConstantTimeCompare([]byte(u.password), []byte(req.Password)) != 1 {
		return LoginResponse{}, false
	}
	return LoginResponse{Token: tokenOf(u.User), Plan: u.Plan}, true
}

// ErrBadToken is the error of a request whose bearer token is not one that
// Login gave.
var ErrBadToken = errors.New("invalid bearer token")

// Identify returns the user whose token r carries, false for an anonymous
// request (no Authorization header), or ErrBadToken. A request with a bad
// token is to be limited as an anonymous one, by IP, before it is refused:
// refusing it first would let a client try tokens without limit.
func Identify(r *http.Request) (User, bool, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return User{}, false, nil
	}
	const scheme = "Bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return User{}, false, ErrBadToken
	}
	tok := strings.TrimSpace(h[len(scheme):])
	id, _, _ := strings.Cut(tok, ".")
	for _, u := range users {
		if u.ID == id && hmac.Equal([]byte(tokenOf(u.User)), []byte(tok)) {
			return u.User, true, nil
		}
	}
	return User{}, false, ErrBadToken
}
