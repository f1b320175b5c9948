// Package errs is Recourse's one error vocabulary: a coded error that the
// HTTP layer translates to a status and a JSON body in one place.
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error; the HTTP layer maps each kind to one status.
type Kind string

// Error kinds.
const (
	ENOTFOUND      Kind = "ENOTFOUND"
	ECONFLICT      Kind = "ECONFLICT"
	EINVALID       Kind = "EINVALID"
	EUNPROCESSABLE Kind = "EUNPROCESSABLE"
	EFORBIDDEN     Kind = "EFORBIDDEN"
	EUNAUTHORIZED  Kind = "EUNAUTHORIZED"
	ETOOLARGE      Kind = "ETOOLARGE"
	ERATELIMIT     Kind = "ERATELIMIT"
	EUNAVAILABLE   Kind = "EUNAVAILABLE"
	EINTERNAL      Kind = "EINTERNAL"
)

// Error is a coded error. Code is the stable machine-readable string shown to
// clients (snake_case); Message is safe to show to a person. Err, if set, is
// the underlying cause and is never shown to clients.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Details map[string]any
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// WithDetails returns e with extra structured details shown to clients.
func (e *Error) WithDetails(kv map[string]any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	for k, v := range kv {
		e.Details[k] = v
	}
	return e
}

var defaultCodes = map[Kind]string{
	ENOTFOUND:      "not_found",
	ECONFLICT:      "conflict",
	EINVALID:       "invalid_request",
	EUNPROCESSABLE: "unprocessable",
	EFORBIDDEN:     "forbidden",
	EUNAUTHORIZED:  "unauthorized",
	ETOOLARGE:      "payload_too_large",
	ERATELIMIT:     "rate_limited",
	EUNAVAILABLE:   "unavailable",
	EINTERNAL:      "internal",
}

// New returns an error of kind k with the default code for that kind.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Code: defaultCodes[k], Message: fmt.Sprintf(format, args...)}
}

// Coded returns an error of kind k with a specific client-visible code.
func Coded(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k that keeps err as its hidden cause.
func Wrap(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Code: defaultCodes[k], Message: fmt.Sprintf(format, args...), Err: err}
}

// NotFound is shorthand for New(ENOTFOUND, ...).
func NotFound(format string, args ...any) *Error { return New(ENOTFOUND, format, args...) }

// Invalid is shorthand for New(EINVALID, ...).
func Invalid(format string, args ...any) *Error { return New(EINVALID, format, args...) }

// Conflict is shorthand for New(ECONFLICT, ...).
func Conflict(format string, args ...any) *Error { return New(ECONFLICT, format, args...) }

// Forbidden is shorthand for New(EFORBIDDEN, ...).
func Forbidden(format string, args ...any) *Error { return New(EFORBIDDEN, format, args...) }

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf returns the kind of err, EINTERNAL when it carries none.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return EINTERNAL
}

// Is reports whether err is a coded error of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }
