package billing

import (
	"context"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Register mounts the read-only billing mirror API on g, the authenticated
// /api/v1 group. Every route needs auth.PermBillingRead. Objects are served
// with the JSON names of billing.go; the version of the state (the event
// that last wrote it) is flattened in as "event_id" and "event_created".
//
//	GET /customers?q=&limit=&cursor=  search customers by email, name, provider id or card ({"data":[…],"next_cursor":…,"match":…})
//	GET /customers/:id                the customer and its subscriptions
//	GET /customers/:id/timeline       the billing timeline, newest first ({"data":[…],"next_cursor":…})
//	GET /subscriptions/:id
//	GET /invoices/:id
//	GET /charges/:id
//	GET /refunds/:id
//	GET /disputes/:id
//	GET /early-fraud-warnings/:id
//
// Unknown ids answer 404 (not_found).
func (s *Store) Register(g *echo.Group) {
	read := auth.Require(auth.PermBillingRead)
	g.GET("/customers", s.searchCustomers, read)
	g.GET("/customers/:id", s.getCustomer, read)
	g.GET("/customers/:id/timeline", s.getTimeline, read)
	g.GET("/subscriptions/:id", getter(s, KindSubscription, s.Subscription, func(v Subscription) string { return v.CustomerID }), read)
	g.GET("/invoices/:id", getter(s, KindInvoice, s.Invoice, func(v Invoice) string { return v.CustomerID }), read)
	g.GET("/charges/:id", getter(s, KindCharge, s.Charge, func(v Charge) string { return v.CustomerID }), read)
	g.GET("/refunds/:id", getter(s, KindRefund, s.Refund, func(v Refund) string { return v.CustomerID }), read)
	g.GET("/disputes/:id", getter(s, KindDispute, s.Dispute, func(v Dispute) string { return v.CustomerID }), read)
	g.GET("/early-fraud-warnings/:id", getter(s, KindFraudWarning, s.FraudWarning, func(v FraudWarning) string { return v.CustomerID }), read)
}

// pathID reads the :id parameter; EINVALID when it cannot be a provider id.
func pathID(c echo.Context) (string, error) {
	id := strings.TrimSpace(c.Param("id"))
	if id == "" || len(id) > maxIDLen {
		return "", errs.Coded(errs.EINVALID, "invalid_id", "the id in the path must be 1–%d characters", maxIDLen)
	}
	return id, nil
}

// getter serves one mirrored object by id. The object is in the caller's
// scope with its customer (auth.Scope); out of scope it answers exactly
// like an unknown id.
func getter[T any](s *Store, kind ObjectKind, load func(context.Context, string) (T, error), customer func(T) string) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		v, err := load(ctx, id)
		if err != nil {
			return err
		}
		if err := s.CustomerInScope(ctx, customer(v)); errs.Is(err, errs.ENOTFOUND) {
			return errs.NotFound("no %s %q in the billing mirror", kindWords(kind), id) // as take words a missing one
		} else if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, v)
	}
}

func (s *Store) getCustomer(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	v, err := s.CustomerOverview(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (s *Store) getTimeline(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	page, err := httpx.ParsePage(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	list, err := s.Timeline(ctx, id, page)
	if err != nil {
		return err
	}
	if len(list.Data) == 0 && page.Cursor == "" {
		known, err := s.CustomerKnown(ctx, id)
		if err != nil {
			return err
		}
		if !known {
			return errs.NotFound("no customer %q in the billing mirror", id)
		}
	}
	return c.JSON(http.StatusOK, list)
}
