// Package stdwebhooks signs and verifies webhooks per the Standard Webhooks
// specification (standardwebhooks.com): headers webhook-id,
// webhook-timestamp (Unix seconds) and webhook-signature ("v1,<base64>"
// entries separated by spaces), each an HMAC-SHA256 over
// "<id>.<timestamp>.<body>" keyed with the secret's bytes ("whsec_" +
// base64). Recourse verifies inbound escalations with it and signs the
// notifications it sends with it.
package stdwebhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far a timestamp may be from now, either way.
const DefaultTolerance = 5 * time.Minute

// Verification errors; callers answer each with a clear 4xx.
var (
	ErrMissingHeaders = errors.New("webhook-id, webhook-timestamp and webhook-signature are required")
	ErrBadTimestamp   = errors.New("webhook-timestamp is not a Unix time in seconds")
	ErrTooOld         = errors.New("webhook-timestamp is outside the tolerance")
	ErrNoMatch        = errors.New("no webhook-signature matches")
)

// Key decodes a secret: "whsec_" followed by base64 is the spec's form;
// any other string is used as its bytes.
func Key(secret string) ([]byte, error) {
	if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
		k, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fmt.Errorf("secret: whsec_ must be followed by base64: %w", err)
		}
		return k, nil
	}
	if secret == "" {
		return nil, errors.New("secret is empty")
	}
	return []byte(secret), nil
}

// Sign returns the webhook-signature value for (id, ts, body) under key.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts.Unix())
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SetHeaders sets the three headers on h for a message signed now.
func SetHeaders(h http.Header, key []byte, id string, now time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(HeaderSignature, Sign(key, id, now, body))
}

// Verify checks h's signature over body with any of keys (rotation) and
// that the timestamp is within tolerance of now. It returns the message id.
func Verify(h http.Header, body []byte, keys [][]byte, now time.Time, tolerance time.Duration) (string, error) {
	id, tsv, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || tsv == "" || sigs == "" {
		return "", ErrMissingHeaders
	}
	sec, err := strconv.ParseInt(tsv, 10, 64)
	if err != nil {
		return "", ErrBadTimestamp
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return "", ErrTooOld
	}
	for _, key := range keys {
		want := Sign(key, id, ts, body)
		for _, got := range strings.Fields(sigs) {
			if hmac.Equal([]byte(got), []byte(want)) {
				return id, nil
			}
		}
	}
	return "", ErrNoMatch
}
