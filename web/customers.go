package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// Customer 360 bounds: a page shows at most this many of a customer's
// cases, billing timeline facts and dispute facts (the newest cases and
// facts; the oldest dispute facts).
const (
	customerCasesShown    = 200
	customerTimelineShown = 100
	customerFactsShown    = 50
)

type customersPage struct {
	page
	Query string
	Match billing.SearchMatch
	Hits  []billing.CustomerHit
	// Tickets are cases linked to an external ticket whose id is the query.
	Tickets []ticketHit
	Next    string
	Cursor  string
}

// customers is GET /customers?q=&cursor=: customer search, as
// GET /api/v1/customers answers it. One hit for an exact email or a
// provider id opens that customer.
func (con *Console) customers(c echo.Context) error {
	p, _ := auth.FromContext(c.Request().Context())
	if !auth.Allowed(p.Role, auth.PermBillingRead) || con.opt.Billing == nil {
		return con.renderError(c, http.StatusForbidden, "Your role may not read billing data.")
	}
	q := strings.TrimSpace(c.QueryParam("q"))
	pg := customersPage{page: con.basePage(c, "Customers"), Query: q, Cursor: c.QueryParam("cursor")}
	pg.Search = q
	if q == "" {
		return con.render(c, http.StatusOK, "customers.html", pg)
	}
	store := con.opt.Billing
	if con.opt.Cases != nil {
		store = store.CountingOpenCases(con.opt.Cases)
	}
	if pg.Cursor == "" {
		tickets, err := con.ticketHits(c, p, q)
		if err != nil {
			return con.fail(c, err)
		}
		pg.Tickets = tickets
	}
	res, err := store.SearchCustomers(c.Request().Context(), billing.CustomerSearch{Query: q, Cursor: pg.Cursor})
	if err != nil {
		e, ok := errs.As(err)
		if !ok || e.Kind == errs.EINTERNAL {
			return con.fail(c, err)
		}
		if len(pg.Tickets) > 0 {
			// The query is a ticket id that is no customer query: the
			// tickets are the answer.
			return con.render(c, http.StatusOK, "customers.html", pg)
		}
		pg.Error, pg.ErrorCode = inlineError(err)
		return con.render(c, httpx.StatusOf(e.Kind), "customers.html", pg)
	}
	if len(res.Data) == 0 && len(pg.Tickets) == 1 {
		return c.Redirect(http.StatusSeeOther, "/cases/"+url.PathEscape(pg.Tickets[0].Ticket.CaseID))
	}
	if len(res.Data) == 1 && res.NextCursor == nil && pg.Cursor == "" &&
		(res.Match == billing.MatchID || strings.EqualFold(res.Data[0].Email, q)) {
		return c.Redirect(http.StatusSeeOther, "/customers/"+url.PathEscape(res.Data[0].ID))
	}
	pg.Match, pg.Hits = res.Match, res.Data
	if res.NextCursor != nil {
		pg.Next = *res.NextCursor
	}
	return con.render(c, http.StatusOK, "customers.html", pg)
}

// ticketHit is a case linked to an external ticket the search named.
type ticketHit struct {
	Ticket cases.ExternalTicket
	Case   cases.Case
}

// ticketHits finds the cases linked to external ticket id q (any system),
// for a viewer who may read cases.
func (con *Console) ticketHits(c echo.Context, p auth.Principal, q string) ([]ticketHit, error) {
	if con.opt.Cases == nil || !auth.Allowed(p.Role, auth.PermCasesRead) {
		return nil, nil
	}
	ctx := c.Request().Context()
	tickets, err := con.opt.Cases.TicketsByID(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []ticketHit
	for _, t := range tickets {
		cs, err := con.opt.Cases.Get(ctx, t.CaseID)
		if err != nil {
			if e, ok := errs.As(err); ok && e.Kind == errs.ENOTFOUND {
				continue
			}
			return nil, err
		}
		out = append(out, ticketHit{Ticket: t, Case: cases.ForViewer(p, cs)})
	}
	return out, nil
}

// customerCase is one of the customer's cases as the viewer may see it.
type customerCase struct {
	Case cases.Case
	SLA  slaClock
}

type customerPage struct {
	page
	Customer      billing.CustomerOverview
	Invoices      []billing.Invoice
	Charges       []billing.Charge
	Refunds       []billing.Refund
	Disputes      []billing.Dispute
	Timeline      []billing.TimelineEntry
	MoreTimeline  bool
	CanCases      bool
	Cases         []customerCase
	OpenCases     int
	MoreCases     bool
	CanFacts      bool
	Facts         []disputes.Fact
	FactsMissing  bool
	CasesMissing  bool
	TimelineEmpty bool
	// CanErase (customers:erase, admins) shows the erasure form; Erase is
	// what it was sent with when it is shown again with an error.
	CanErase bool
	Erase    eraseForm
}

// customerPage is GET /customers/:id: the Customer 360 — profile,
// subscriptions, invoices, charges, refunds, disputes, the billing
// timeline, every case of the customer and (facts:read) the dispute facts.
func (con *Console) customerPage(c echo.Context) error {
	pg := page{}
	if c.QueryParam("done") == "erased" {
		pg.Notice = "The customer's personal data was erased."
	}
	return con.showCustomer(c, http.StatusOK, pg, eraseForm{})
}

// showCustomer renders the Customer 360 with status, the flash of flash
// (Error, ErrorCode, Notice) and the erasure form's last values.
func (con *Console) showCustomer(c echo.Context, status int, flash page, form eraseForm) error {
	ctx := c.Request().Context()
	p, _ := auth.FromContext(ctx)
	if !auth.Allowed(p.Role, auth.PermBillingRead) || con.opt.Billing == nil {
		return con.renderError(c, http.StatusForbidden, "Your role may not read billing data.")
	}
	id := c.Param("id")
	b := con.opt.Billing
	ov, err := b.CustomerOverview(ctx, id)
	if err != nil {
		return con.fail(c, err)
	}
	title := ov.Name
	if title == "" {
		title = ov.Email
	}
	if title == "" {
		title = ov.ID
	}
	pg := customerPage{page: con.basePage(c, title), Customer: ov, Erase: form,
		CanErase: con.opt.Eraser != nil && auth.Allowed(p.Role, auth.PermCustomersErase)}
	pg.Error, pg.ErrorCode, pg.Notice = flash.Error, flash.ErrorCode, flash.Notice
	if pg.Invoices, err = b.InvoicesByCustomer(ctx, id); err != nil {
		return con.fail(c, err)
	}
	if pg.Charges, err = b.ChargesByCustomer(ctx, id); err != nil {
		return con.fail(c, err)
	}
	if pg.Refunds, err = b.RefundsByCustomer(ctx, id); err != nil {
		return con.fail(c, err)
	}
	if pg.Disputes, err = b.DisputesByCustomer(ctx, id); err != nil {
		return con.fail(c, err)
	}
	tl, err := b.Timeline(ctx, id, httpx.PageRequest{Limit: customerTimelineShown})
	if err != nil {
		return con.fail(c, err)
	}
	pg.Timeline, pg.MoreTimeline = tl.Data, tl.NextCursor != nil

	pg.CanCases = auth.Allowed(p.Role, auth.PermCasesRead) && con.opt.Cases != nil
	if pg.CanCases {
		list, err := con.opt.Cases.List(ctx, cases.Filter{Customer: id}, httpx.PageRequest{Limit: customerCasesShown})
		if err != nil {
			con.opt.Log.Warn("console: cases of customer", "customer", id, "err", err)
			pg.CasesMissing = true
		}
		now, soon := con.opt.Clock.Now(), con.opt.Cases.SLAPolicy().DueSoon.D()
		for _, cs := range list.Data {
			pg.Cases = append(pg.Cases, customerCase{Case: cases.ForViewer(p, cs), SLA: slaOf(cs, now, soon)})
			if cs.IsOpen() {
				pg.OpenCases++
			}
		}
		pg.MoreCases = list.NextCursor != nil
	}
	pg.CanFacts = auth.Allowed(p.Role, auth.PermFactsRead) && con.opt.Facts != nil
	if pg.CanFacts {
		facts, err := con.opt.Facts.Facts(ctx, id, disputes.FactQuery{Limit: customerFactsShown})
		if err != nil {
			con.opt.Log.Warn("console: dispute facts of customer", "customer", id, "err", err)
			pg.FactsMissing = true
		}
		pg.Facts = facts
	}
	return con.render(c, status, "customer.html", pg)
}
