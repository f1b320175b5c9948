// Package httpx is the HTTP plumbing shared by every domain package: the Echo
// instance with its middleware, the one error handler, request binding and
// cursor pagination.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/metrics"
	"github.com/recourse-hq/recourse/internal/pan"
)

// ErrorBody is the one error shape: {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Details   map[string]any `json:"details,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
}

// Options configure New.
type Options struct {
	Logger     *slog.Logger
	Metrics    *metrics.Metrics
	APIMaxBody int64
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client (ClientIP); empty: the connection's peer is the client.
	TrustedProxies []*net.IPNet
}

// New returns an Echo instance with request ids, structured access logs,
// panic recovery, metrics and the JSON error handler installed.
func New(opt Options) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = ErrorHandler(opt.Logger)
	e.IPExtractor = ClientIP(opt.TrustedProxies)
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		// Keep the id in the request context too, for logs and the audit log.
		RequestIDHandler: func(c echo.Context, id string) {
			c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), requestIDKey{}, id)))
		},
	}))
	e.Use(accessLog(opt.Logger, opt.Metrics))
	e.Use(recoverPanics(opt.Logger))
	e.Use(QueryLimit(MaxQueryBytes, MaxQueryValues))
	return e
}

// ClientIP finds a request's client address for echo.Context.RealIP (rate
// limits, sign-in limits, logs). Without trusted proxies it is the
// connection's peer and forwarding headers are ignored: a client could
// name any address in them and escape its per-address limit. With them,
// X-Forwarded-For is read right to left from the peer, skipping trusted
// proxies, and the first untrusted address is the client; a peer that is
// not a trusted proxy is the client whatever the header says. Loopback
// and private ranges are trusted only when listed.
func ClientIP(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

type requestIDKey struct{}

// RequestIDFrom returns the id of the request ctx belongs to, or "".
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// StatusOf maps an error kind to its HTTP status.
func StatusOf(k errs.Kind) int {
	switch k {
	case errs.ENOTFOUND:
		return http.StatusNotFound
	case errs.ECONFLICT:
		return http.StatusConflict
	case errs.EINVALID:
		return http.StatusBadRequest
	case errs.EUNPROCESSABLE:
		return http.StatusUnprocessableEntity
	case errs.EFORBIDDEN:
		return http.StatusForbidden
	case errs.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case errs.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case errs.ERATELIMIT:
		return http.StatusTooManyRequests
	case errs.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ErrorHandler writes every error as ErrorBody. Coded errors keep their code
// and message; Echo's own errors (unknown route, wrong method) are translated;
// anything else is logged with the request id and shown as "internal".
func ErrorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		rid := c.Response().Header().Get(echo.HeaderXRequestID)
		var (
			status int
			body   ErrorBody
		)
		var he *echo.HTTPError
		if e, ok := errs.As(err); ok {
			status = StatusOf(e.Kind)
			body.Error = ErrorDetail{Code: e.Code, Message: e.Message, Details: e.Details}
			if e.Kind == errs.EINTERNAL || e.Kind == errs.EUNAVAILABLE {
				log.Error("request failed", "request_id", rid, "code", e.Code, "err", err)
			}
		} else if errors.As(err, &he) {
			status = he.Code
			msg := http.StatusText(he.Code)
			if s, ok := he.Message.(string); ok {
				msg = s
			}
			code := map[int]string{404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 401: "unauthorized", 403: "forbidden", 400: "invalid_request", 429: "rate_limited", 503: "unavailable"}[he.Code]
			if code == "" {
				code = "http_" + strconv.Itoa(he.Code)
			}
			body.Error = ErrorDetail{Code: code, Message: msg}
			if he.Code >= 500 {
				log.Error("request failed", "request_id", rid, "err", err)
				body.Error = ErrorDetail{Code: "internal", Message: "internal error"}
			}
		} else if db.IsUnavailable(err) || db.IsBrokenConn(err) {
			// A write that could not reach the database, or whose connection
			// broke under it (reads are retried once in internal/db), is not
			// retried blindly: the client is told to, as the API promises
			// (503, never 500).
			status = http.StatusServiceUnavailable
			body.Error = ErrorDetail{Code: "unavailable", Message: "the database cannot be reached right now; retry shortly"}
			log.Error("request failed", "request_id", rid, "code", "unavailable", "err", err)
		} else {
			status = http.StatusInternalServerError
			body.Error = ErrorDetail{Code: "internal", Message: "internal error; quote the request id to an operator"}
			log.Error("request failed", "request_id", rid, "err", err)
		}
		body.Error.RequestID = rid
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		if status == http.StatusServiceUnavailable {
			c.Response().Header().Set("Retry-After", "5")
		}
		_ = c.JSON(status, body)
	}
}

func accessLog(log *slog.Logger, m *metrics.Metrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			if m != nil {
				m.HTTPRequests.WithLabelValues(route, c.Request().Method, strconv.Itoa(status)).Inc()
				m.HTTPDuration.WithLabelValues(route, c.Request().Method).Observe(elapsed.Seconds())
			}
			lvl := slog.LevelInfo
			if route == "/healthz" || route == "/readyz" || route == "/metrics" {
				lvl = slog.LevelDebug
			} else if status >= 500 {
				lvl = slog.LevelError
			}
			log.LogAttrs(c.Request().Context(), lvl, "http request",
				slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				slog.String("method", c.Request().Method),
				slog.String("route", route),
				slog.String("path", pan.Mask(c.Request().URL.Path)),
				slog.Int("status", status),
				slog.Int64("bytes", c.Response().Size),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.String("remote", c.RealIP()),
			)
			return nil
		}
	}
}

func recoverPanics(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					log.Error("panic serving request", "request_id", c.Response().Header().Get(echo.HeaderXRequestID), "panic", fmt.Sprint(r))
					err = errs.New(errs.EINTERNAL, "internal error")
				}
			}()
			return next(c)
		}
	}
}

// BodyLimit caps request bodies at n bytes; larger ones get 413.
func BodyLimit(n int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > n {
				return errs.Coded(errs.ETOOLARGE, "payload_too_large", "request body is larger than %d bytes", n)
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, n)
			return next(c)
		}
	}
}

// ReadBody reads the whole request body, mapping an over-limit body to 413.
func ReadBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errs.Coded(errs.ETOOLARGE, "payload_too_large", "request body is larger than %d bytes", mbe.Limit)
		}
		return nil, errs.Coded(errs.EINVALID, "body_unreadable", "could not read the request body")
	}
	return b, nil
}

// Bind decodes the JSON body into dst (a request struct, never a storage
// model), refusing unknown fields and trailing data, and masks every card
// number in the text it holds to its last four digits (pan.MaskFields):
// this is the one place text from clients enters Recourse, so no endpoint
// can forget to mask (PCI DSS 3.3/3.4).
func Bind(c echo.Context, dst any) error {
	b, err := ReadBody(c)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return errs.Coded(errs.EINVALID, "body_required", "a JSON request body is required")
	}
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errs.Coded(errs.EINVALID, "malformed_json", "request body is not valid JSON for this endpoint: %s", pan.Mask(err.Error()))
	}
	if dec.More() {
		return errs.Coded(errs.EINVALID, "malformed_json", "request body has data after the JSON value")
	}
	pan.MaskFields(dst)
	return nil
}

// Query bounds applied to every request by New: a query string longer than
// MaxQueryBytes, or with more than MaxQueryValues values, is refused before
// any handler parses it (400 query_too_complex). Every list filter takes
// one value per parameter, so legitimate queries are far below both.
const (
	MaxQueryBytes  = 4096
	MaxQueryValues = 64
)

// QueryLimit refuses query strings over maxBytes bytes or maxValues values
// (counted by their separators, before parsing) with 400 query_too_complex.
func QueryLimit(maxBytes, maxValues int) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			q := c.Request().URL.RawQuery
			if len(q) > maxBytes {
				return errs.Coded(errs.EINVALID, "query_too_complex", "the query string is longer than %d bytes", maxBytes)
			}
			if q != "" && strings.Count(q, "&")+strings.Count(q, ";")+1 > maxValues {
				return errs.Coded(errs.EINVALID, "query_too_complex", "the query string has more than %d parameters", maxValues)
			}
			return next(c)
		}
	}
}
