package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// Exchange is one HTTP request and the response it got, with both bodies
// read (the request's as sent, nil for none).
type Exchange struct {
	Request      *http.Request
	RequestBody  []byte
	Status       int
	Header       http.Header
	ResponseBody []byte
}

// Documented reports whether path is one the document speaks for: the API
// (/api/), the webhook doors (/webhooks/) and /healthz, /readyz, /metrics.
// The console's HTML routes are not part of the API.
func Documented(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/webhooks/")
}

// Validate checks ex against the document, by this rule:
//
//   - the response is always checked: its status must be documented for the
//     operation (or fall to its `default`, the error envelope), its
//     Content-Type must be one the document lists for that status, and a
//     JSON body must match the schema (non-JSON bodies — CSV and JSON-lines
//     exports, the PDF packet, /metrics — are declared without a schema, so
//     only their status and content type are checked);
//   - the request is checked (parameters, headers, body) only when the server
//     answered 2xx, so tests that send malformed bodies or bad parameters on
//     purpose still pass: the server refused them, as the document says it
//     may, with the error envelope; a request the server accepted must be one
//     the document allows. checkRequest false leaves the request alone
//     (Unchecked requests).
//   - a path the document lacks fails, unless the server answered 404 or 405
//     with the error envelope (a test probing an unknown route).
//
// A request body without a Content-Type is read as application/json (the
// server binds JSON whatever the header says).
func Validate(ex Exchange, checkRequest bool) error {
	doc, err := Document()
	if err != nil {
		return err
	}
	req := ex.Request
	route, params, err := findRoute(doc, req.Method, req.URL)
	if err != nil {
		if ex.Status == http.StatusNotFound || ex.Status == http.StatusMethodNotAllowed {
			return validateErrorBody(doc, ex)
		}
		return err
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
	}
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(ex.RequestBody))
	r.ContentLength = int64(len(ex.RequestBody))
	if len(ex.RequestBody) > 0 && r.Header.Get("Content-Type") == "" {
		r.Header.Set("Content-Type", "application/json")
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	if checkRequest && ex.Status >= 200 && ex.Status < 300 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return fmt.Errorf("request does not match %s %s (the server answered %d): %w", route.Method, route.Path, ex.Status, err)
		}
		r.Body = io.NopCloser(bytes.NewReader(ex.RequestBody))
	}
	header := ex.Header
	if header == nil {
		header = http.Header{}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: ex.Status, Header: header, Options: opts}
	out.SetBodyBytes(ex.ResponseBody)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("response %d does not match %s %s: %w", ex.Status, route.Method, route.Path, err)
	}
	return nil
}

// validateErrorBody checks an answer to an undocumented route is the error
// envelope.
func validateErrorBody(doc *openapi3.T, ex Exchange) error {
	ct, _, _ := mime.ParseMediaType(ex.Header.Get("Content-Type"))
	if ex.Request.Method == http.MethodHead && len(ex.ResponseBody) == 0 {
		return nil
	}
	if ct != "application/json" {
		return fmt.Errorf("%d for an undocumented route answered %q, not the JSON error envelope", ex.Status, ex.Header.Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(ex.ResponseBody, &v); err != nil {
		return fmt.Errorf("%d for an undocumented route: body is not JSON: %w", ex.Status, err)
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("%d for an undocumented route is not the error envelope: %w", ex.Status, err)
	}
	return nil
}

// findRoute matches method and u's path against the document's paths the way
// Echo routes: a static segment wins over a parameter at the first segment
// where two templates differ (/cases/bulk before /cases/{id}).
func findRoute(doc *openapi3.T, method string, u *url.URL) (*routers.Route, map[string]string, error) {
	segs := strings.Split(u.EscapedPath(), "/")
	var (
		best      string
		bestScore []bool
		bestItem  *openapi3.PathItem
		pathFound bool
	)
	for tmpl, item := range doc.Paths.Map() {
		ts := strings.Split(tmpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		score := make([]bool, len(ts))
		ok := true
		for i, t := range ts {
			if isParam(t) {
				if segs[i] == "" {
					ok = false
					break
				}
				continue
			}
			if t != segs[i] {
				ok = false
				break
			}
			score[i] = true
		}
		if !ok {
			continue
		}
		pathFound = true
		if item.GetOperation(method) == nil {
			continue
		}
		if bestItem == nil || better(score, bestScore) {
			best, bestScore, bestItem = tmpl, score, item
		}
	}
	if bestItem == nil {
		if pathFound {
			return nil, nil, fmt.Errorf("%s %s: the document has the path but not the method", method, u.Path)
		}
		return nil, nil, fmt.Errorf("%s %s: no path of the document matches", method, u.Path)
	}
	params := map[string]string{}
	for i, t := range strings.Split(best, "/") {
		if isParam(t) {
			v, err := url.PathUnescape(segs[i])
			if err != nil {
				v = segs[i]
			}
			params[t[1:len(t)-1]] = v
		}
	}
	return &routers.Route{Spec: doc, Path: best, PathItem: bestItem, Method: method, Operation: bestItem.GetOperation(method)}, params, nil
}

// OperationPath returns the document's path template that method and u's
// path resolve to (/api/v1/cases/{id}), as Validate matches it.
func OperationPath(method string, u *url.URL) (string, error) {
	doc, err := Document()
	if err != nil {
		return "", err
	}
	route, _, err := findRoute(doc, method, u)
	if err != nil {
		return "", err
	}
	return route.Path, nil
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// better reports whether a beats b: static at the first position they differ.
func better(a, b []bool) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i]
		}
	}
	return false
}

// ValidateWebhook checks a request Recourse sends to a receiver against the
// document's `webhooks` entry name (e.g. "notification"): the headers it
// requires and the JSON body.
func ValidateWebhook(name string, header http.Header, body []byte) error {
	doc, err := Document()
	if err != nil {
		return err
	}
	item := doc.Webhooks[name]
	if item == nil || item.Post == nil {
		return fmt.Errorf("the document has no webhook %q", name)
	}
	op := item.Post
	for _, p := range op.Parameters {
		if p.Value.In == openapi3.ParameterInHeader && p.Value.Required && header.Get(p.Value.Name) == "" {
			return fmt.Errorf("webhook %s: header %s is missing", name, p.Value.Name)
		}
	}
	mt := op.RequestBody.Value.Content.Get("application/json")
	if ct, _, _ := mime.ParseMediaType(header.Get("Content-Type")); ct != "application/json" {
		return fmt.Errorf("webhook %s: Content-Type %q, want application/json", name, header.Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("webhook %s: body is not JSON: %w", name, err)
	}
	if err := mt.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return fmt.Errorf("webhook %s: body does not match: %w", name, err)
	}
	return nil
}
