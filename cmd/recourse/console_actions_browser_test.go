package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/recourse-hq/recourse/internal/browsertest"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripemock"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// goToCase brings a signed-in session to a case's page by its address (a
// link from a queue or a notification); TestConsoleRetryPaymentBrowser
// comes by the customer search instead.
func goToCase(s *browsertest.Session, base, caseID string) {
	s.Navigate(base + "/cases/" + caseID)
	s.WaitVisible("#case-actions")
}

// doubleClick clicks the button whose text is text twice in a row, on the
// same node, as an impatient person does.
func doubleClick(t *testing.T, s *browsertest.Session, text string) {
	t.Helper()
	sel := fmt.Sprintf(`[...document.querySelectorAll("button")].filter(b => b.innerText.trim() === %q).slice(0, 1)`, text)
	s.Do("wait for the button "+text, chromedp.WaitVisible(chromedp.JSPath(sel)))
	ctx, cancel := context.WithTimeout(s.Context(), 10*time.Second)
	defer cancel()
	nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.JSPath(sel)))
	if err != nil || len(nodes) == 0 {
		t.Fatalf("find the button %q: %v", text, err)
	}
	s.Do("double-click "+text, chromedp.MouseClickNode(nodes[0]), chromedp.MouseClickNode(nodes[0]))
}

// (Textareas are filled by selector: FillLabeled's clear fails on an empty
// textarea; Fill clears it by script.)

// consoleUsers creates the console's people.
func consoleUsers(in *instance, roles map[string]string) {
	for email, role := range roles {
		name := strings.ToUpper(email[:1]) + email[1:strings.Index(email, "@")]
		withStdin(consolePassword+"\n", func() {
			in.mustCLI("user", "create", "--email", email, "--name", name, "--role", role, "--password-stdin")
		})
	}
}

const consolePassword = "correct horse battery"

// An agent asks for a refund over their limit: the form's preview says it
// needs approval before anything is sent, a double click requests it once,
// and a supervisor in another browser approves it from the inbox; the
// refund then succeeds at stripe-mock and the case page shows its id.
func TestConsoleRefundApprovalBrowser(t *testing.T) {
	b := browsertest.Start(t)
	mock := stripemock.Start(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
				"RECOURSE_STRIPE_API_KEY": "sk_test_123", "RECOURSE_STRIPE_API_BASE": mock.URL}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			admin, api := in.token("admin"), in.token("agent")
			consoleUsers(in, map[string]string{"ada@example.com": "agent", "sam@example.com": "supervisor"})

			// A customer on a 199.00 USD plan, mirrored from signed webhooks.
			g := stripetest.New(41, stripetest.WithPlans(stripetest.Plan{Name: "Team", UnitAmount: 19900, Currency: "usd", Interval: "month"}))
			paid := g.ActiveRenews(time.Now().Add(-10*24*time.Hour).UTC(), 0)
			for _, e := range paid {
				in.post(e)
			}
			in.drained(admin)
			charge := lastOf(paid, "charge.succeeded").Object
			chargeID := charge["id"].(string)
			code, c := in.do("POST", "/api/v1/cases", api, jsonBody(map[string]any{"kind": "refund_request", "channel": "email",
				"title": "Charged after cancelling", "links": map[string]any{"charge": chargeID}}), nil)
			if code != 201 {
				t.Fatalf("open case: %d %v", code, c)
			}
			caseID := c["id"].(string)

			ada := b.NewSession(t)
			signIn(ada, in.url, "ada@example.com", consolePassword)
			goToCase(ada, in.url, caseID)
			ada.WaitVisible("#form-refund")
			ada.WaitText("#refund-preview", "Left to refund")
			ada.Axe()
			ada.Screenshot("case-with-action-forms")

			// 150.00 is over the agent limit (100.00): the preview says so
			// before anything is submitted.
			ada.FillLabeled("Amount to refund (USD)", "150.00")
			ada.Fill("#refund-reason", "Charged after cancelling; customer sent the cancellation email")
			ada.WaitText("#refund-preview", "needs approval")
			if got := ada.Text("#refund-preview"); !strings.Contains(got, "agent limit") || !strings.Contains(got, "100.00") {
				t.Errorf("the preview does not say which rule asks for approval: %q", got)
			}
			ada.Screenshot("preview-needs-approval")
			if code, l := in.do("GET", "/api/v1/cases/"+caseID+"/actions", admin, nil, nil); code != 200 || len(l["data"].([]any)) != 0 {
				t.Fatalf("previews recorded actions: %d %v", code, l)
			}

			doubleClick(t, ada, "Request: Refund")
			ada.WaitText("#action-notice", "waiting for a supervisor")
			ada.WaitText("#actions", "pending approval")
			ada.Axe()
			ada.Screenshot("refund-waiting-for-approval")
			_, l := in.do("GET", "/api/v1/cases/"+caseID+"/actions", admin, nil, nil)
			list := l["data"].([]any)
			if len(list) != 1 {
				t.Fatalf("a double click requested %d actions, want 1: %v", len(list), l)
			}
			act := list[0].(map[string]any)
			if act["status"] != "pending_approval" || act["amount"] != float64(15000) || act["requested_by"] != "Ada" {
				t.Fatalf("the action: %v", act)
			}

			// The supervisor, in their own browser, approves it from the inbox.
			sam := b.NewSession(t)
			signIn(sam, in.url, "sam@example.com", consolePassword)
			sam.Navigate(in.url + "/?view=approvals")
			sam.WaitVisible("table#approvals")
			sam.WaitText("table#approvals", "150.00 USD")
			sam.Screenshot("approvals-inbox")
			sam.Fill("table#approvals textarea", "Cancellation email confirmed")
			sam.ClickButton("Approve")
			sam.WaitText("#notice", "Approved")
			sam.Screenshot("approved")

			goToCase(sam, in.url, caseID)
			sam.WaitText("#actions", "succeeded")
			provider := sam.Text("#actions .provider-id")
			if !strings.HasPrefix(provider, "re_") {
				t.Errorf("provider id on the case page %q, want a refund id", provider)
			}
			if got := sam.Text("#actions"); !strings.Contains(got, "Sam") || !strings.Contains(got, "Cancellation email confirmed") {
				t.Errorf("the approver is not on the action: %q", got)
			}
			sam.Axe()
			sam.Screenshot("refund-succeeded")
			_, a := in.do("GET", "/api/v1/actions/"+act["id"].(string), admin, nil, nil)
			if a["status"] != "succeeded" || a["provider_object_id"] != provider {
				t.Fatalf("after approval: %v", a)
			}
			ada.NoConsoleErrors()
			sam.NoConsoleErrors()
		})
	}
}

// An agent works a failed renewal: tells the customer (the transition
// form), retries the payment from its form — it succeeds at stripe-mock and
// the retry's outcome recovers the case through its lifecycle — and leaves
// a note.
func TestConsoleRetryPaymentBrowser(t *testing.T) {
	b := browsertest.Start(t)
	mock := stripemock.Start(t)
	in := boot(t, map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t),
		"RECOURSE_STRIPE_API_KEY": "sk_test_123", "RECOURSE_STRIPE_API_BASE": mock.URL})
	admin := in.token("admin")
	consoleUsers(in, map[string]string{"ada@example.com": "agent"})

	// A renewal whose payment failed: the events up to the failure.
	g := stripetest.New(43)
	evs := g.RenewalRecovers(time.Now().Add(-35*24*time.Hour).UTC(), 1)
	failed := false
	for _, e := range evs {
		if e.Type == "invoice.paid" && failed {
			break
		}
		if e.Type == "invoice.payment_failed" {
			failed = true
		}
		in.post(e)
	}
	in.drained(admin)
	inv := lastOf(evs, "invoice.payment_failed").Object
	invoiceID := inv["id"].(string)
	cs := in.caseOf(admin, "payment_failure", invoiceID)
	caseID := cs["id"].(string)
	if cs["state"] != "failing" {
		t.Fatalf("the case is %v, want failing", cs["state"])
	}

	// The agent finds the customer by email from the header search, and the
	// failed-renewal case from the Customer 360.
	var customer map[string]any
	for _, e := range evs {
		if e.Type == "customer.created" {
			customer = e.Object
		}
	}
	ada := b.NewSession(t)
	signIn(ada, in.url, "ada@example.com", consolePassword)
	if got := openFailedRenewalFromSearch(t, ada, in, customer["email"].(string)); got != caseID {
		t.Fatalf("the search led to case %s, want %s", got, caseID)
	}
	ada.WaitVisible("#form-retry_payment")
	ada.WaitText("#retry_payment-preview", invoiceID)
	ada.Axe()
	ada.Screenshot("failed-renewal-case")

	// The agent told the customer: the transition form.
	ada.Fill("#reason", "Emailed the customer to update their card")
	ada.ClickButton("contact customer")
	ada.WaitText("#state", "awaiting_customer")
	ada.Screenshot("awaiting-customer")

	// The customer updated the card: retry.
	ada.Fill("#retry_payment-reason", "Customer updated their card on the phone")
	ada.WaitText("#retry_payment-preview", "No approval needed")
	ada.Screenshot("retry-preview")
	ada.ClickButton("Request: Retry the payment")
	ada.WaitText("#action-notice", "succeeded")
	ada.WaitText("#actions", "succeeded")
	ada.WaitText("#state", "recovered")
	if got := ada.Text("#status"); !strings.Contains(got, "closed") {
		t.Errorf("after the retry the case is %q, want closed (recovered)", got)
	}
	ada.Screenshot("retry-succeeded")

	ada.Fill("#note-body", "Paid with the new card; nothing more to do.")
	ada.Click("#add-note")
	ada.WaitText("#timeline", "nothing more to do")
	ada.Axe()
	ada.Screenshot("case-recovered")

	_, c := in.do("GET", "/api/v1/cases/"+caseID, admin, nil, nil)
	if c["state"] != "recovered" || c["status"] != "closed" {
		t.Fatalf("the case after the retry: %v %v", c["state"], c["status"])
	}
	_, l := in.do("GET", "/api/v1/cases/"+caseID+"/actions", admin, nil, nil)
	list := l["data"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["status"] != "succeeded" || list[0].(map[string]any)["type"] != "retry_payment" {
		t.Fatalf("actions: %v", l)
	}
	ada.NoConsoleErrors()
}
