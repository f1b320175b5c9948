package escalations

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/stdwebhooks"
)

// Tolerance is how far a delivery's timestamp may be from now.
const Tolerance = stdwebhooks.DefaultTolerance

// Register mounts POST /webhooks/escalations/:source on e, bodies up to
// maxBody bytes, behind mw (the rate limit per source and address).
func (r *Receiver) Register(e *echo.Echo, maxBody int64, mw ...echo.MiddlewareFunc) {
	chain := append(append([]echo.MiddlewareFunc(nil), mw...), httpx.BodyLimit(maxBody))
	e.POST("/webhooks/escalations/:source", r.handle, chain...)
}

// handle verifies the delivery with its source's scheme, then opens or
// updates the case: 201 with the new case, 200 for a known ticket
// (updated:false for a redelivery). 404 unknown source, 401 bad or old
// signature, 400 malformed JSON, 413 too large, 422-class EINVALID for a
// ticket that cannot make a case.
func (r *Receiver) handle(c echo.Context) error {
	src, ok := r.by[c.Param("source")]
	if !ok {
		return errs.Coded(errs.ENOTFOUND, "unknown_source", "no escalation source %q is configured", c.Param("source"))
	}
	body, err := httpx.ReadBody(c)
	if err != nil {
		return err
	}
	if err := r.verify(src, c.Request().Header, body); err != nil {
		return err
	}
	var t Ticket
	if err := json.Unmarshal(body, &t); err != nil {
		return errs.Coded(errs.EINVALID, "malformed_json", "the body is not the ticket JSON: %v", err)
	}
	out, err := r.Receive(c.Request().Context(), src, t)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if out.Created {
		status = http.StatusCreated
	}
	return c.JSON(status, out)
}

func (r *Receiver) verify(src Source, h http.Header, body []byte) error {
	now := r.now()
	switch src.Type {
	case TypeZendesk:
		sig, tsv := h.Get(zendeskSignature), h.Get(zendeskTimestamp)
		if sig == "" || tsv == "" {
			return errs.Coded(errs.EUNAUTHORIZED, "missing_signature", "%s and %s are required", zendeskSignature, zendeskTimestamp)
		}
		ts, ok := parseZendeskTime(tsv)
		if !ok {
			return errs.Coded(errs.EUNAUTHORIZED, "invalid_timestamp", "%s is not a time", zendeskTimestamp)
		}
		if d := now.Sub(ts); d > Tolerance || d < -Tolerance {
			return errs.Coded(errs.EUNAUTHORIZED, "timestamp_out_of_tolerance", "the signature timestamp is more than 5 minutes from now")
		}
		want := ZendeskSign(src.key, tsv, body)
		if !hmacEqual(sig, want) {
			return errs.Coded(errs.EUNAUTHORIZED, "invalid_signature", "the Zendesk signature does not match")
		}
		return nil
	default:
		_, err := stdwebhooks.Verify(h, body, [][]byte{src.key}, now, Tolerance)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, stdwebhooks.ErrTooOld):
			return errs.Coded(errs.EUNAUTHORIZED, "timestamp_out_of_tolerance", "webhook-timestamp is more than 5 minutes from now")
		case errors.Is(err, stdwebhooks.ErrNoMatch):
			return errs.Coded(errs.EUNAUTHORIZED, "invalid_signature", "no webhook-signature matches")
		default:
			return errs.Coded(errs.EUNAUTHORIZED, "missing_signature", "%v", err)
		}
	}
}
