package main

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/browsertest"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// An agent finds a customer from the header search and reads the Customer
// 360: the subscription (past due), the failed renewal invoice and the open
// failed-renewal case that Stripe's invoice.payment_failed opened; clicking
// the case lands on its case page. Seeded with real signed Stripe-shaped
// events through /webhooks/stripe. Axe runs on the search results and the
// 360; every screen is saved as a screenshot.
func TestConsoleCustomer360Browser(t *testing.T) {
	b := browsertest.Start(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			const password = "correct horse battery"
			withStdin(password+"\n", func() {
				in.mustCLI("user", "create", "--email", "ada@example.com", "--name", "Ada Agent", "--role", "agent", "--password-stdin")
			})
			customer := postFailedRenewal(t, in)
			name, email := customer["name"].(string), customer["email"].(string)

			s := b.NewSession(t)
			signIn(s, in.url, "ada@example.com", password)

			// A name prefix lists the matches (no redirect: it is not exact).
			s.FillLabeled("Search customers", name[:4])
			s.ClickButton("Search")
			s.WaitVisible("#customers")
			s.WaitText("#customers", email)
			if got := s.Text("h1"); got != "Customers" {
				t.Errorf("search results page says %q", got)
			}
			s.Axe()
			s.Screenshot("customer-search")

			// Nothing found: the empty state, not an error.
			s.FillLabeled("Search customers", "nobody@nowhere.test")
			s.ClickButton("Search")
			s.WaitText("#empty", "No customer matches")
			s.Screenshot("customer-search-empty")

			caseID := openFailedRenewalFromSearch(t, s, in, email)
			if loc := s.Location(); loc != in.url+"/cases/"+caseID {
				t.Errorf("after clicking the case at %s, want /cases/%s", loc, caseID)
			}
			s.NoConsoleErrors()
		})
	}
}

// postFailedRenewal delivers, as signed webhooks, a customer's signup and
// a renewal whose first payment attempt fails (invoice.payment_failed on
// the subscription's cycle invoice; the subscription goes past_due), waits
// for the worker, and returns the customer object. The failure opens a
// payment_failure case that stays open: the retries are not delivered.
func postFailedRenewal(t *testing.T, in *instance) map[string]any {
	t.Helper()
	g := stripetest.New(31)
	evs := g.RenewalRecovers(time.Now().Add(-40*24*time.Hour).UTC(), 2)
	var customer map[string]any
	failed := false
	for _, e := range evs {
		if failed && e.Type == "invoice.payment_failed" {
			break // the retry and the recovery are left out
		}
		if e.Type == "customer.created" {
			customer = e.Object
		}
		if e.Type == "invoice.payment_failed" {
			failed = true
		}
		in.post(e)
	}
	if customer == nil || !failed {
		t.Fatal("the story has no customer.created or invoice.payment_failed")
	}
	in.drained(in.token("admin"))
	return customer
}

// openFailedRenewalFromSearch is an agent's way from any signed-in page of
// session s to the open failed-renewal case of the customer with email:
// type the email into the header's "Search customers" box, land on the
// Customer 360 (an exact email opens the customer), check that it shows
// the past-due subscription, the failed renewal invoice and the open
// payment-failure case, then click the case. It returns the case id, with
// s on /cases/:id (h1 = the case title) — ready to retry the payment, add
// a note or resolve. Axe runs on the 360; both pages are screenshotted.
func openFailedRenewalFromSearch(t *testing.T, s *browsertest.Session, in *instance, email string) (caseID string) {
	t.Helper()
	// What the page must show, from the API the console shares.
	tok := in.token("agent")
	code, found := in.do("GET", "/api/v1/customers?q="+url.QueryEscape(email), tok, nil, nil)
	hits, _ := found["data"].([]any)
	if code != 200 || len(hits) != 1 {
		t.Fatalf("customer %s over the API: %d %v", email, code, found)
	}
	customerID := hits[0].(map[string]any)["id"].(string)
	if n := hits[0].(map[string]any)["open_cases"]; n != float64(1) {
		t.Errorf("the API counts %v open cases of %s, want 1", n, customerID)
	}
	code, list := in.do("GET", "/api/v1/cases?kind=payment_failure&status=open&customer="+url.QueryEscape(customerID), tok, nil, nil)
	cs, _ := list["data"].([]any)
	if code != 200 || len(cs) != 1 {
		t.Fatalf("open payment_failure cases of %s: %d %v", customerID, code, list)
	}
	c := cs[0].(map[string]any)
	caseID, title := c["id"].(string), c["title"].(string)
	invoiceID, _ := c["links"].(map[string]any)["invoice"].(string)

	s.FillLabeled("Search customers", email)
	s.ClickButton("Search")
	s.WaitText("#profile", email)
	if loc := s.Location(); loc != in.url+"/customers/"+customerID {
		t.Fatalf("the exact email led to %s, want /customers/%s", loc, customerID)
	}
	s.WaitText("#subscriptions", "past due")
	row := "#invoices tr[data-invoice-id='" + invoiceID + "']"
	if invoiceID == "" {
		t.Fatalf("case %s links no invoice: %v", caseID, c)
	}
	s.WaitText(row, "payment failed")
	s.WaitText("#charges", "failed")
	s.WaitText("#customer-cases", title)
	if got := s.Text("#cases-h"); !strings.Contains(got, "1 open") {
		t.Errorf("cases heading %q, want 1 open", got)
	}
	if got := s.Text("#billing-timeline"); !strings.Contains(strings.ToLower(got), "fail") {
		t.Errorf("billing timeline does not tell of the failure: %q", got)
	}
	s.Axe()
	s.Screenshot("customer-360")

	s.Click("#customer-cases tr[data-case-id='" + caseID + "'] a")
	s.WaitText("h1", title)
	if got := s.Text("h1"); got != title {
		t.Fatalf("case page h1 %q, want %q", got, title)
	}
	s.Screenshot("case-from-customer-360")
	return caseID
}
