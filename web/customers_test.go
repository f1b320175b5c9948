package web

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/stripetest"
	"github.com/recourse-hq/recourse/privacy"
)

// customerEnv is a console with the billing mirror and the facts store,
// and one customer's chargeback story applied to the mirror.
type customerEnv struct {
	*env
	store    *billing.Store
	facts    *disputes.FactStore
	customer map[string]any // the customer object of the story
	charge   map[string]any
	dispute  map[string]any
}

func newCustomerEnv(t *testing.T, d *db.DB) *customerEnv {
	t.Helper()
	return newCustomerEnvWith(t, d, nil)
}

// newCustomerEnvWith is newCustomerEnv with more options set by with.
func newCustomerEnvWith(t *testing.T, d *db.DB, with func(*Options)) *customerEnv {
	t.Helper()
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	ce := &customerEnv{store: billing.NewStore(d, clk), facts: disputes.NewFactStore(d, clk)}
	ce.env = newEnvWith(t, d, func(o *Options) {
		o.Billing, o.Facts = ce.store, ce.facts
		if with != nil {
			with(o)
		}
	})
	gen := stripetest.New(7, stripetest.WithClock(func() time.Time { return clk.Now() }))
	evs := gen.Chargeback(clk.Now().Add(-60*24*time.Hour), stripetest.ChargebackOptions{Brand: "visa", Reason: "fraudulent"})
	ctx := context.Background()
	for _, e := range evs {
		err := d.Transact(ctx, func(tx *gorm.DB) error {
			_, err := ce.store.In(tx).Apply(ctx, billing.ProviderEvent{ID: e.ID, Type: e.Type, Created: e.Created.UTC(),
				APIVersion: stripetest.APIVersion, Payload: e.Payload})
			return err
		})
		if err != nil {
			t.Fatalf("apply %s: %v", e.Type, err)
		}
		switch e.Type {
		case "customer.created":
			ce.customer = e.Object
		case "charge.succeeded":
			ce.charge = e.Object
		case "charge.dispute.created":
			ce.dispute = e.Object
		}
	}
	if ce.customer == nil || ce.charge == nil || ce.dispute == nil {
		t.Fatal("the chargeback story lacks a customer, charge or dispute")
	}
	return ce
}

func (ce *customerEnv) customerID() string { return ce.customer["id"].(string) }

func TestCustomerSearchPage(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ce := newCustomerEnv(t, d)
		ce.user("ada@example.com", "Ada", auth.RoleAgent)
		b := ce.browser()
		b.mustLogin("ada@example.com")
		id, email, name := ce.customerID(), ce.customer["email"].(string), ce.customer["name"].(string)
		card := ce.charge["payment_method_details"].(map[string]any)["card"].(map[string]any)

		// The header search is on every signed-in page.
		q := b.get("/")
		want(t, q, http.StatusOK, `<form method="get" action="/customers" class="search" role="search">`,
			`<label for="customer-search">Search customers</label>`, `id="customer-search" name="q"`)

		// No query: a hint, not an error.
		want(t, b.get("/customers"), http.StatusOK, `id="empty"`, "Type in “Search customers”")

		// An exact email or a provider id goes straight to the customer.
		for _, s := range []string{email, strings.ToUpper(email), id, ce.charge["id"].(string), ce.dispute["id"].(string)} {
			p := b.get("/customers?q=" + url.QueryEscape(s))
			if p.status != http.StatusSeeOther || p.header.Get("Location") != "/customers/"+id {
				t.Fatalf("q=%s: %d %s", s, p.status, p.header.Get("Location"))
			}
		}
		// A name or card lists the matches, with the query kept in the box.
		for _, s := range []string{name[:3], "visa " + card["last4"].(string), card["last4"].(string)} {
			p := b.get("/customers?q=" + url.QueryEscape(s))
			want(t, p, http.StatusOK, `<table id="customers">`, `data-customer-id="`+id+`"`, `href="/customers/`+id+`"`,
				`value="`+s+`"`)
		}
		// Nothing found: a helpful empty state.
		want(t, b.get("/customers?q=nobody%40nowhere.test"), http.StatusOK, `id="empty"`, "No customer matches")
		// The API's limits, inline with its code.
		want(t, b.get("/customers?q="+strings.Repeat("x", billing.MaxSearchQueryLen+1)), http.StatusBadRequest,
			`data-code="query_too_long"`)
		want(t, b.get("/customers?q=ada&cursor=bogus"), http.StatusBadRequest, `data-code="invalid_cursor"`)
	})
}

func TestCustomer360Page(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ce := newCustomerEnv(t, d)
		ada := ce.user("ada@example.com", "Ada", auth.RoleAgent)
		ce.user("ana@example.com", "Ana", auth.RoleAnalyst)
		id := ce.customerID()
		ctx := context.Background()

		// Two cases of the customer, one closed, and one of someone else.
		open, err := ce.cases.OpenManual(ctx, ada, cases.ManualCase{Kind: cases.KindBillingInquiry, Channel: cases.ChannelEmail,
			Title: "Why two charges?", Links: cases.Links{Customer: &id}})
		if err != nil {
			t.Fatal(err)
		}
		old, err := ce.cases.OpenManual(ctx, ada, cases.ManualCase{Kind: cases.KindRefundRequest, Channel: cases.ChannelPhone,
			Title: "Old refund <request>", Links: cases.Links{Customer: &id}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ce.cases.Transition(ctx, ada, old.ID, cases.TransitionRequest{Event: "decline"}); err != nil {
			t.Fatal(err)
		}
		other := "cus_someone_else"
		stranger, err := ce.cases.OpenManual(ctx, ada, cases.ManualCase{Kind: cases.KindBillingInquiry, Channel: cases.ChannelEmail,
			Title: "Not this customer", Links: cases.Links{Customer: &other}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ce.facts.PutFacts(ctx, id, []disputes.FactInput{{ID: "f1", Kind: disputes.FactLogin,
			OccurredAt: "2026-10-01T10:00:00Z", IP: "203.0.113.9", DeviceID: "dev-42"}}); err != nil {
			t.Fatal(err)
		}

		agent := ce.browser()
		agent.mustLogin("ada@example.com")
		p := agent.get("/customers/" + id)
		card := ce.charge["payment_method_details"].(map[string]any)["card"].(map[string]any)
		want(t, p, http.StatusOK,
			`<h1>`+ce.customer["name"].(string)+`</h1>`, ce.customer["email"].(string), `<code>`+id+`</code>`,
			`<table id="subscriptions">`, `<table id="invoices">`, `<table id="charges">`, `<table id="disputes">`,
			`data-charge-id="`+ce.charge["id"].(string)+`"`, "visa ···· "+card["last4"].(string),
			`data-dispute-id="`+ce.dispute["id"].(string)+`"`, "fraudulent",
			`<ol id="billing-timeline"`,
			// Every case, open and closed, linked.
			`href="/cases/`+open.ID+`"`, `href="/cases/`+old.ID+`"`, "Old refund &lt;request&gt;", "(1 open, 2 in all)",
		)
		if strings.Contains(p.body, stranger.ID) {
			t.Fatal("another customer's case is on the page")
		}
		// Agents may not read dispute facts: no section, no data.
		if strings.Contains(p.body, `id="facts-h"`) || strings.Contains(p.body, "203.0.113.9") {
			t.Fatal("an agent sees dispute facts")
		}
		analyst := ce.browser()
		analyst.mustLogin("ana@example.com")
		want(t, analyst.get("/customers/"+id), http.StatusOK, `id="facts-h"`, "203.0.113.9", "dev-42")

		// Unknown customers are a 404 page.
		want(t, agent.get("/customers/cus_nobody"), http.StatusNotFound)
	})
}

// TestCustomerPagesNeedBillingRead: every role holds billing:read today,
// so the refusal is driven with a principal whose role holds nothing (a
// role added later without billing:read gets exactly this).
func TestCustomerPagesNeedBillingRead(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	ce := newCustomerEnv(t, d)
	clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
	con, err := New(Options{DB: d, Clock: clk, Log: slog.New(slog.DiscardHandler), Cases: ce.cases, Billing: ce.store, Facts: ce.facts})
	if err != nil {
		t.Fatal(err)
	}
	id, email := ce.customerID(), ce.customer["email"].(string)
	for _, role := range append([]auth.Role{"viewer"}, auth.Roles()...) {
		e := httpx.New(httpx.Options{Logger: slog.New(slog.DiscardHandler)})
		as := func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				c.SetRequest(c.Request().WithContext(auth.WithPrincipal(c.Request().Context(),
					auth.Principal{Kind: auth.ActorUser, UserID: 1, Name: "Vic", Role: role})))
				return next(c)
			}
		}
		e.GET("/customers", con.customers, as)
		e.GET("/customers/:id", con.customerPage, as)
		for _, path := range []string{"/customers?q=" + url.QueryEscape("visa 4242"), "/customers/" + id} {
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			body := rec.Body.String()
			if auth.Allowed(role, auth.PermBillingRead) {
				if rec.Code != http.StatusOK || !strings.Contains(body, `id="customer-search"`) {
					t.Fatalf("%s %s: %d", role, path, rec.Code)
				}
				continue
			}
			if rec.Code != http.StatusForbidden || !strings.Contains(body, "may not read billing data") {
				t.Fatalf("%s %s: %d\n%s", role, path, rec.Code, body)
			}
			if strings.Contains(body, email) || strings.Contains(body, id) || strings.Contains(body, `id="customer-search"`) {
				t.Fatalf("%s %s: billing data or the search box on a refusal:\n%s", role, path, body)
			}
		}
	}
}

// More matches than a page: the console pages through them with the
// API's cursor, each customer once.
func TestCustomerSearchPaging(t *testing.T) {
	t.Parallel()
	d := dbtest.Open(t, db.SQLite)
	ce := newCustomerEnv(t, d)
	ce.user("ada@example.com", "Ada", auth.RoleAgent)
	gen := stripetest.New(9)
	ctx := context.Background()
	n := billing.DefaultSearchLimit + 5
	for i := 0; i < n; i++ {
		c := gen.Customer(stripetest.CustomerParams{Name: fmt.Sprintf("Quinn %02d", i), Email: fmt.Sprintf("quinn%02d@example.com", i)})
		e := gen.NewEvent("customer.created", c)
		if err := d.Transact(ctx, func(tx *gorm.DB) error {
			_, err := ce.store.In(tx).Apply(ctx, billing.ProviderEvent{ID: e.ID, Type: e.Type, Created: e.Created.UTC(),
				APIVersion: stripetest.APIVersion, Payload: e.Payload})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	b := ce.browser()
	b.mustLogin("ada@example.com")
	next := regexp.MustCompile(`id="next" rel="next" href="([^"]+)"`)
	seen := map[string]bool{}
	path := "/customers?q=quinn"
	for pages := 1; ; pages++ {
		p := b.get(path)
		want(t, p, http.StatusOK, `<table id="customers">`)
		for _, m := range regexp.MustCompile(`data-customer-id="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
			if seen[m[1]] {
				t.Fatalf("%s twice", m[1])
			}
			seen[m[1]] = true
		}
		m := next.FindStringSubmatch(p.body)
		if m == nil {
			if pages != 2 {
				t.Fatalf("%d pages for %d customers", pages, n)
			}
			break
		}
		path = html.UnescapeString(m[1])
	}
	if len(seen) != n {
		t.Fatalf("%d customers over the pages, want %d", len(seen), n)
	}
}

// A case's external tickets show on its page, and the header search finds
// a case by a ticket's id: one ticket opens its case, an id shared by two
// desks lists both.
func TestExternalTicketsInConsole(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ce := newCustomerEnv(t, d)
		ada := ce.user("ada@example.com", "Ada", auth.RoleAgent)
		ctx := context.Background()
		open := func(title string) cases.Case {
			cs, err := ce.cases.OpenManual(ctx, ada, cases.ManualCase{Kind: cases.KindBillingInquiry, Channel: cases.ChannelEmail, Title: title})
			if err != nil {
				t.Fatal(err)
			}
			return cs
		}
		link := func(caseID, system, ticket, u string) {
			if _, err := ce.cases.LinkExternal(ctx, ada, caseID, cases.ExternalTicket{System: system, TicketID: ticket, URL: u}, "", ""); err != nil {
				t.Fatal(err)
			}
		}
		one, two := open("Charged twice"), open("Where is my refund")
		link(one.ID, "zendesk", "ZD-881", "https://desk.example.com/agent/tickets/881")
		link(one.ID, "chat", "77", "")
		link(two.ID, "zendesk", "77", "")

		b := ce.browser()
		b.mustLogin("ada@example.com")
		want(t, b.get("/cases/"+one.ID), http.StatusOK, `<h2 id="external-h">External tickets</h2>`,
			`<dt>zendesk</dt><dd><a href="https://desk.example.com/agent/tickets/881" rel="noopener noreferrer" target="_blank"><code>ZD-881</code></a>`,
			`<dt>chat</dt><dd><code>77</code>`)
		if p := b.get("/cases/" + open("No tickets").ID); strings.Contains(p.body, "External tickets") {
			t.Fatal("a case without tickets shows the section")
		}

		if p := b.get("/customers?q=ZD-881"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/cases/"+one.ID {
			t.Fatalf("q=ZD-881: %d %s", p.status, p.header.Get("Location"))
		}
		p := b.get("/customers?q=77")
		want(t, p, http.StatusOK, `<table id="tickets"`, `data-case-id="`+one.ID+`"`, `data-case-id="`+two.ID+`"`)
		if strings.Contains(p.body, "No customer matches") {
			t.Fatal("the empty state shows beside ticket hits")
		}
		want(t, b.get("/customers?q=ZD-882"), http.StatusOK, "No customer matches")

	})
}

// A customer whose personal data was erased says so on the Customer 360,
// so an empty email and name read as erased, not as unknown.
func TestCustomer360ShowsErasure(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ce := newCustomerEnv(t, d)
		ce.user("ada@example.com", "Ada", auth.RoleAgent)
		b := ce.browser()
		b.mustLogin("ada@example.com")
		id := ce.customerID()
		if p := b.get("/customers/" + id); strings.Contains(p.body, `id="erased"`) {
			t.Fatal("a customer never erased shows the erasure notice")
		}
		at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
		if err := d.Gorm.Exec("INSERT INTO erased_customers (customer_id, erased_at) VALUES (?, ?)", id, at).Error; err != nil {
			t.Fatal(err)
		}
		want(t, b.get("/customers/"+id), http.StatusOK, `<p class="notice" id="erased" role="status">`,
			`<time datetime="2026-11-21T10:00:00Z">`)
	})
}

// An admin erases a customer from the Customer 360: the form asks for a
// reason and the id typed again, refuses over an open dispute unless
// forced, and afterwards the page holds none of the customer's personal
// data. Roles without customers:erase see no form and are refused.
func TestConsoleErasesCustomer(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		clk := clock.NewManual(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC))
		ce := newCustomerEnvWith(t, d, func(o *Options) {
			o.Eraser = privacy.NewEraser(d, clk, audit.New(d, clk), slog.New(slog.DiscardHandler))
		})
		ctx := context.Background()
		ada := ce.user("ada@example.com", "Ada", auth.RoleAdmin)
		ce.user("sam@example.com", "Sam", auth.RoleSupervisor)
		id, email, name := ce.customerID(), ce.customer["email"].(string), ce.customer["name"].(string)
		dp := ce.dispute["id"].(string)
		if _, err := ce.cases.OpenManual(ctx, ada, cases.ManualCase{Kind: cases.KindBillingInquiry, Channel: cases.ChannelEmail,
			Title: "Chargeback from " + name, Links: cases.Links{Customer: &id, Dispute: &dp}}); err != nil {
			t.Fatal(err)
		}
		erased := func() bool {
			var n int64
			if err := d.Gorm.Table("erased_customers").Where("customer_id = ?", id).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n > 0
		}

		sam := ce.browser()
		sam.mustLogin("sam@example.com")
		if p := sam.get("/customers/" + id); p.status != http.StatusOK || strings.Contains(p.body, `id="erase-form"`) {
			t.Fatalf("a supervisor sees the erasure form (%d)", p.status)
		}
		csrf := csrfOf(t, sam.get("/customers/"+id))
		want(t, sam.post("/customers/"+id+"/erase", url.Values{"csrf": {csrf}, "reason": {"DSR-1"}, "confirm": {id}, "force": {"on"}}),
			http.StatusForbidden, "customers:erase")
		if erased() {
			t.Fatal("a supervisor erased a customer")
		}

		b := ce.browser()
		b.mustLogin("ada@example.com")
		page := b.get("/customers/" + id)
		want(t, page, http.StatusOK, `id="erase-form"`, `action="/customers/`+id+`/erase"`, html.EscapeString(email))
		csrf = csrfOf(t, page)
		post := func(f url.Values) resp {
			f.Set("csrf", csrf)
			return b.post("/customers/"+id+"/erase", f)
		}
		// Without the CSRF token nothing happens.
		if p := b.post("/customers/"+id+"/erase", url.Values{"reason": {"DSR-1"}, "confirm": {id}, "force": {"on"}}); p.status < 400 || erased() {
			t.Fatalf("no CSRF token: %d, erased %v", p.status, erased())
		}
		want(t, post(url.Values{"reason": {"DSR-1"}, "confirm": {id + "x"}}), http.StatusBadRequest, `data-code="confirmation_mismatch"`, `value="DSR-1"`)
		want(t, post(url.Values{"reason": {"  "}, "confirm": {id}}), http.StatusBadRequest, `data-code="reason_required"`)
		want(t, post(url.Values{"reason": {"DSR-1"}, "confirm": {id}}), http.StatusConflict, `data-code="open_dispute"`, `value="DSR-1"`)
		if erased() {
			t.Fatal("refused erasures erased the customer")
		}

		p := post(url.Values{"reason": {"DSR-1"}, "confirm": {" " + id + " "}, "force": {"on"}})
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/customers/"+id+"?done=erased" {
			t.Fatalf("erase: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
		}
		if !erased() {
			t.Fatal("the customer is not erased")
		}
		after := b.get("/customers/" + id + "?done=erased")
		want(t, after, http.StatusOK, `id="notice"`, `id="erased"`, "Erase again")
		for _, s := range []string{email, html.EscapeString(email), name, html.EscapeString(name)} {
			if strings.Contains(after.body, s) {
				t.Fatalf("the Customer 360 still shows %q after the erasure", s)
			}
		}
		var actors []string
		if err := d.Gorm.Table("audit_log").Where("action = ? AND object_id = ?", "customer.erase", id).Pluck("actor", &actors).Error; err != nil {
			t.Fatal(err)
		}
		if len(actors) != 1 || actors[0] != "Ada" {
			t.Fatalf("audit actors %v, want [Ada]", actors)
		}
	})
}
