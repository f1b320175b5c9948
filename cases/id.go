package cases

import (
	"crypto/rand"
	"time"
)

// crockford is Crockford's base32 alphabet: no I, L, O or U, so ids read
// aloud or retyped are unambiguous; it sorts like the values it encodes.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idPrefix marks case ids.
const idPrefix = "case_"

// NewID returns a case id: "case_" and 26 characters, a 48-bit millisecond
// timestamp (10 characters) followed by 80 random bits (16 characters), in
// Crockford base32. Ids made in later milliseconds sort after earlier ones.
func NewID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic("cases: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	// 128 bits → 26 base32 characters (the first carries 3 bits).
	var out [26]byte
	var acc uint64
	var bits uint
	pos := 25
	for i := 15; i >= 0; i-- {
		acc |= uint64(b[i]) << bits
		bits += 8
		for bits >= 5 && pos >= 0 {
			out[pos] = crockford[acc&31]
			acc >>= 5
			bits -= 5
			pos--
		}
	}
	if pos >= 0 {
		out[pos] = crockford[acc&31]
	}
	return idPrefix + string(out[:])
}

// validID reports whether s looks like a case id, so a malformed path
// parameter is a 404 without a query.
func validID(s string) bool {
	if len(s) != len(idPrefix)+26 || s[:len(idPrefix)] != idPrefix {
		return false
	}
	for i := len(idPrefix); i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
