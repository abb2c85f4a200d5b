package limittest

import (
	"fmt"
	"strconv"
	"strings"
)

// Item is one member of a structured-field list (RFC 9651), such as
// `"quotes";q=100;w=60` in RateLimit-Policy: its bare item and parameters.
type Item struct {
	// Value is the bare item: a string unquoted, a token, a number as
	// written, a boolean as "?1" or "?0", a byte sequence with its colons.
	Value string
	// Params are the parameters, each value as Value is; a parameter
	// without a value is the boolean "?1".
	Params map[string]string
	// Keys are the parameters' keys in the order written.
	Keys []string
}

// Int returns the parameter key as an integer, and whether it is one.
func (it Item) Int(key string) (int64, bool) {
	v, ok := it.Params[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// ParseList parses a structured-field list, as the IETF RateLimit and
// RateLimit-Policy fields are, into its items. Inner lists are refused:
// neither field has them. The error quotes the value and says where it
// went wrong.
func ParseList(value string) ([]Item, error) {
	p := &sfParser{s: value}
	var items []Item
	p.skipSP()
	if p.eof() {
		return nil, nil
	}
	for {
		it, err := p.item()
		if err != nil {
			return nil, fmt.Errorf("limittest: structured field %q: at %d: %w", value, p.i, err)
		}
		items = append(items, it)
		p.skipOWS()
		if p.eof() {
			return items, nil
		}
		if p.s[p.i] != ',' {
			return nil, fmt.Errorf("limittest: structured field %q: at %d: want a comma between items", value, p.i)
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, fmt.Errorf("limittest: structured field %q: a comma ends the list", value)
		}
	}
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) skipSP() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *sfParser) item() (Item, error) {
	v, err := p.bare()
	if err != nil {
		return Item{}, err
	}
	it := Item{Value: v, Params: map[string]string{}}
	for !p.eof() && p.s[p.i] == ';' {
		p.i++
		p.skipSP()
		k, err := p.key()
		if err != nil {
			return Item{}, err
		}
		pv := "?1"
		if !p.eof() && p.s[p.i] == '=' {
			p.i++
			if pv, err = p.bare(); err != nil {
				return Item{}, err
			}
		}
		if _, dup := it.Params[k]; !dup {
			it.Keys = append(it.Keys, k)
		}
		it.Params[k] = pv
	}
	return it, nil
}

func (p *sfParser) key() (string, error) {
	start := p.i
	if p.eof() || !(p.s[p.i] >= 'a' && p.s[p.i] <= 'z' || p.s[p.i] == '*') {
		return "", fmt.Errorf("want a parameter key (lower case)")
	}
	for !p.eof() && strings.IndexByte("abcdefghijklmnopqrstuvwxyz0123456789_-.*", p.s[p.i]) >= 0 {
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) bare() (string, error) {
	if p.eof() {
		return "", fmt.Errorf("want an item, found the end")
	}
	switch c := p.s[p.i]; {
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return p.s[p.i-2 : p.i], nil
		}
		return "", fmt.Errorf("want ?0 or ?1")
	case c == ':':
		end := strings.IndexByte(p.s[p.i+1:], ':')
		if end < 0 {
			return "", fmt.Errorf("unterminated byte sequence")
		}
		v := p.s[p.i : p.i+end+2]
		p.i += end + 2
		return v, nil
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '*':
		start := p.i
		for !p.eof() && isTokenChar(p.s[p.i]) {
			p.i++
		}
		return p.s[start:p.i], nil
	case c == '(':
		return "", fmt.Errorf("inner lists are not supported")
	default:
		return "", fmt.Errorf("unexpected %q", c)
	}
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~:/", c) >= 0
}

func (p *sfParser) number() (string, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	digits, dot := 0, false
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot && digits > 0:
			dot = true
		default:
			goto done
		}
		p.i++
	}
done:
	if digits == 0 || p.s[p.i-1] == '.' {
		return "", fmt.Errorf("malformed number %q", p.s[start:p.i])
	}
	if !dot && digits > 15 {
		return "", fmt.Errorf("integer %q has more than 15 digits", p.s[start:p.i])
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) str() (string, error) {
	var b strings.Builder
	for p.i++; !p.eof(); p.i++ {
		switch c := p.s[p.i]; c {
		case '\\':
			p.i++
			if p.eof() || p.s[p.i] != '"' && p.s[p.i] != '\\' {
				return "", fmt.Errorf("bad escape in a string")
			}
			b.WriteByte(p.s[p.i])
		case '"':
			p.i++
			return b.String(), nil
		default:
			if c < 0x20 || c > 0x7e {
				return "", fmt.Errorf("byte %#x in a string", c)
			}
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("unterminated string")
}
