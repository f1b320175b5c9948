// Package apispectest runs tests' HTTP exchanges through the OpenAPI
// validator of package apispec: a wrapper around an http.Handler for tests
// that serve the real Echo stack (httptest.NewServer or NewRecorder), an
// http.RoundTripper for tests that call a running service, and Check for a
// single exchange. A test fails, naming the method, the path and what differs,
// when an exchange does not match the document; the rule (the response always,
// the request when the server answered 2xx) is apispec.Validate's.
//
// It is apart from apispec so the binary, which serves the document, does not
// link package testing.
package apispectest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/recourse-hq/recourse/internal/apispec"
)

// Check validates one exchange (see apispec.Validate for the rule) and fails t with
// the method, the path and what differs. reqBody is the body as sent (nil for
// none); respBody the whole response body.
func Check(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	check(t, apispec.Exchange{Request: req, RequestBody: reqBody, Status: resp.StatusCode, Header: resp.Header, ResponseBody: respBody})
}

func check(t testing.TB, ex apispec.Exchange) {
	t.Helper()
	if !apispec.Documented(ex.Request.URL.Path) {
		return
	}
	logExchange(ex)
	if err := apispec.Validate(ex, !unchecked(ex.Request)); err != nil {
		t.Errorf("OpenAPI contract: %s %s: %v\nrequest body: %s\nresponse body: %s", ex.Request.Method, ex.Request.URL.RequestURI(), err, clip(ex.RequestBody), clip(ex.ResponseBody))
	}
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

type uncheckedKey struct{}

// Unchecked marks req as a deliberate violation of the document (a negative
// test whose request the server nevertheless accepts): its request is not
// validated, its response still is.
func Unchecked(req *http.Request) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), uncheckedKey{}, true))
}

func unchecked(req *http.Request) bool {
	v, _ := req.Context().Value(uncheckedKey{}).(bool)
	return v
}

// Transport wraps base (http.DefaultTransport when nil) so every exchange with
// a documented path (see Documented) is validated as Check does; t fails with
// what differs. Bodies are read whole and handed on unchanged.
func Transport(t testing.TB, base http.RoundTripper, opts ...Option) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{t: t, base: base, o: newOptions(opts)}
}

// Option adjusts Transport and Handler.
type Option func(*options)

type options struct{ skip map[string]bool }

func newOptions(opts []Option) options {
	o := options{skip: map[string]bool{}}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Skip leaves exchanges on these exact paths unchecked: routes a test mounts
// for itself (a probe answering the principal), which are no part of the
// API.
func Skip(paths ...string) Option {
	return func(o *options) {
		for _, p := range paths {
			o.skip[p] = true
		}
	}
}

func (o options) checks(path string) bool { return apispec.Documented(path) && !o.skip[path] }

type roundTripper struct {
	t    testing.TB
	base http.RoundTripper
	o    options
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if !rt.o.checks(req.URL.Path) {
		return rt.base.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := rt.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return resp, err
	}
	check(rt.t, apispec.Exchange{Request: req, RequestBody: reqBody, Status: resp.StatusCode, Header: resp.Header, ResponseBody: b})
	return resp, nil
}

// Client returns an *http.Client whose exchanges are validated (Transport).
func Client(t testing.TB, opts ...Option) *http.Client {
	return &http.Client{Transport: Transport(t, nil, opts...)}
}

// Handler wraps h for httptest.NewRecorder-style tests: every request served
// on a documented path is validated as Check does once h returns.
func Handler(t testing.TB, h http.Handler, opts ...Option) http.Handler {
	o := newOptions(opts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !o.checks(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		var reqBody []byte
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				t.Errorf("OpenAPI contract: read the request body of %s %s: %v", r.Method, r.URL.Path, err)
			}
			reqBody = b
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		check(t, apispec.Exchange{Request: r, RequestBody: reqBody, Status: status, Header: w.Header().Clone(), ResponseBody: rec.body.Bytes()})
	})
}

// recorder tees what a handler writes.
type recorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (the exports) flush through the recorder.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var logMu sync.Mutex

// logExchange appends "METHOD /documented/path STATUS" to the file named by
// RECOURSE_APISPEC_LOG, when set: which operations the tests exercise
// through the validator, and with which answers.
func logExchange(ex apispec.Exchange) {
	name := os.Getenv("RECOURSE_APISPEC_LOG")
	if name == "" {
		return
	}
	path := "(undocumented) " + ex.Request.URL.Path
	if p, err := apispec.OperationPath(ex.Request.Method, ex.Request.URL); err == nil {
		path = p
	}
	logMu.Lock()
	defer logMu.Unlock()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s %d\n", ex.Request.Method, path, ex.Status)
}
