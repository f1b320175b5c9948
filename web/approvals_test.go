package web

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	stripeprovider "github.com/recourse-hq/recourse/billing/stripe"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
)

// mirror is a billing mirror holding charges only.
type mirror struct{ charges map[string]billing.Charge }

func (m mirror) Customer(_ context.Context, id string) (billing.Customer, error) {
	return billing.Customer{ID: id}, nil
}
func (m mirror) Subscription(_ context.Context, id string) (billing.Subscription, error) {
	return billing.Subscription{}, errs.NotFound("no subscription %s", id)
}
func (m mirror) Invoice(_ context.Context, id string) (billing.Invoice, error) {
	return billing.Invoice{}, errs.NotFound("no invoice %s", id)
}
func (m mirror) Charge(_ context.Context, id string) (billing.Charge, error) {
	c, ok := m.charges[id]
	if !ok {
		return c, errs.NotFound("no charge %s", id)
	}
	return c, nil
}
func (m mirror) Dispute(_ context.Context, id string) (billing.Dispute, error) {
	return billing.Dispute{}, errs.NotFound("no dispute %s", id)
}
func (m mirror) DisputesByCharge(context.Context, string) ([]billing.Dispute, error) { return nil, nil }
func (m mirror) FraudWarningsByCharge(context.Context, string) ([]billing.FraudWarning, error) {
	return nil, nil
}

// refunds answers POST /v1/refunds like Stripe and counts the calls.
type refunds struct {
	mu sync.Mutex
	n  int
}

func (f *refunds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	f.n++
	n := f.n
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", fmt.Sprintf("req_%d", n))
	_, _ = io.WriteString(w, fmt.Sprintf(`{"id":"re_%d","object":"refund","amount":%s,"currency":"usd","status":"succeeded","charge":%q}`, n, r.Form.Get("amount"), r.Form.Get("charge")))
}

func (f *refunds) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

type approvalsEnv struct {
	*env
	actions *actions.Service
	stripe  *refunds
}

func newApprovalsEnv(t *testing.T, d *db.DB) *approvalsEnv {
	t.Helper()
	ae := &approvalsEnv{stripe: &refunds{}}
	ss := httptest.NewServer(ae.stripe)
	t.Cleanup(ss.Close)
	prov, err := stripeprovider.New(stripeprovider.Config{APIKey: "sk_test_123", APIBase: ss.URL, Timeout: 5 * time.Second, MaxNetworkRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	ae.env = newEnvWith(t, d, func(o *Options) {
		created := o.Clock.Now().Add(-24 * time.Hour)
		m := mirror{charges: map[string]billing.Charge{}}
		for _, id := range []string{"ch_1", "ch_2", "ch_3"} {
			m.charges[id] = billing.Charge{ID: id, CustomerID: "cus_console", Amount: 90000, Currency: "usd", Status: "succeeded", Paid: true, Created: created}
		}
		ae.actions = actions.NewService(actions.Config{DB: d, Clock: o.Clock, Log: o.Log, Provider: prov,
			Mirror: func(*gorm.DB) actions.Mirror { return m }, Cases: o.Cases, Audit: audit.New(d, o.Clock), Policy: actions.DefaultPolicy()})
		o.Actions = ae.actions
	})
	return ae
}

// pending opens a case on charge and has p request a refund that needs approval.
func (ae *approvalsEnv) pending(t *testing.T, p auth.Principal, charge string) actions.Action {
	t.Helper()
	customer := "cus_console"
	cs, err := ae.cases.OpenManual(context.Background(), p, cases.ManualCase{Kind: cases.KindRefundRequest,
		Channel: cases.ChannelEmail, Title: "Refund " + charge, Links: cases.Links{Customer: &customer, Charge: &charge}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := auth.WithPrincipal(context.Background(), p)
	out, err := ae.actions.Request(ctx, cs.ID, "key-"+charge, actions.Request{Type: "refund", Params: json.RawMessage(`{"amount":60000}`), Reason: "enterprise goodwill"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Action.Status != actions.StatusPendingApproval {
		t.Fatalf("action not pending: %+v", out.Action)
	}
	return out.Action
}

func (ae *approvalsEnv) status(t *testing.T, id string) actions.Status {
	t.Helper()
	a, err := ae.actions.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a.Status
}

func TestApproveAndRejectFromInbox(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ae := newApprovalsEnv(t, d)
		ada := ae.user("ada@example.com", "Ada", auth.RoleAgent)
		sam := ae.user("sam@example.com", "Sam", auth.RoleSupervisor)
		ae.user("tom@example.com", "Tom", auth.RoleSupervisor)
		a1 := ae.pending(t, ada, "ch_1")
		a2 := ae.pending(t, ada, "ch_2")
		own := ae.pending(t, sam, "ch_3")

		sb := ae.browser()
		sb.mustLogin("sam@example.com")
		inbox := sb.get("/?view=approvals")
		want(t, inbox, http.StatusOK, `<table id="approvals">`, `data-action-id="`+a1.ID+`"`, `data-case-id="`+a1.CaseID+`"`,
			`href="/cases/`+a1.CaseID+`"`, "600.00 USD", "Ada (agent)", "enterprise goodwill",
			`<form method="post" action="/actions/`+a1.ID+`/decide"`, `<label for="reason-`+a1.ID+`"`, `<textarea name="reason" id="reason-`+a1.ID+`"`,
			`<button name="decision" value="approve">Approve</button>`, `<button name="decision" value="reject">Reject</button>`)
		for _, r := range a1.ApprovalReasons {
			if !strings.Contains(inbox.body, html.EscapeString(r)) {
				t.Fatalf("approval reason %q not shown:\n%s", r, inbox.body)
			}
		}
		if len(a1.ApprovalReasons) == 0 {
			t.Fatal("a pending action without approval reasons")
		}
		tok := csrfOf(t, inbox)

		// Without the CSRF token: 403, nothing decided.
		want(t, sb.post("/actions/"+a1.ID+"/decide", url.Values{"decision": {"approve"}, "reason": {"ok"}}), http.StatusForbidden)
		if s := ae.status(t, a1.ID); s != actions.StatusPendingApproval {
			t.Fatalf("decided without CSRF: %s", s)
		}

		// The requester may not decide their own action: four eyes.
		p := sb.post("/actions/"+own.ID+"/decide", url.Values{"csrf": {tok}, "decision": {"approve"}, "reason": {"mine"}})
		want(t, p, http.StatusForbidden, `<p class="error"`, `data-code="four_eyes"`, "another supervisor must decide it", `<table id="approvals">`)
		if s := ae.status(t, own.ID); s != actions.StatusPendingApproval {
			t.Fatalf("own action after self-approval: %s", s)
		}
		if ae.stripe.count() != 0 {
			t.Fatal("provider called on a refused approval")
		}

		// A reason is required.
		want(t, sb.post("/actions/"+a1.ID+"/decide", url.Values{"csrf": {tok}, "decision": {"approve"}, "reason": {" "}}),
			http.StatusBadRequest, `data-code="reason_required"`)

		// Approve: executed, back to the inbox with a notice.
		p = sb.post("/actions/"+a1.ID+"/decide", url.Values{"csrf": {tok}, "decision": {"approve"}, "reason": {"checked the contract"}})
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/?view=approvals") {
			t.Fatalf("approve: %d %s\n%s", p.status, p.header.Get("Location"), p.body)
		}
		got, err := ae.actions.Get(context.Background(), a1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != actions.StatusSucceeded || got.DecidedBy == nil || *got.DecidedBy != "Sam" || ae.stripe.count() != 1 {
			t.Fatalf("after approval: %+v (provider calls %d)", got, ae.stripe.count())
		}
		after := sb.get(p.header.Get("Location"))
		want(t, after, http.StatusOK, `id="notice"`, "Approved.", `data-action-id="`+a2.ID+`"`)
		if strings.Contains(after.body, `data-action-id="`+a1.ID+`"`) {
			t.Fatal("a decided action still in the inbox")
		}

		// Already decided: 409 not_pending, inline.
		want(t, sb.post("/actions/"+a1.ID+"/decide", url.Values{"csrf": {tok}, "decision": {"reject"}, "reason": {"too late"}}),
			http.StatusConflict, `data-code="not_pending"`)

		// Reject.
		p = sb.post("/actions/"+a2.ID+"/decide", url.Values{"csrf": {tok}, "decision": {"reject"}, "reason": {"no contract clause"}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("reject: %d %s", p.status, p.body)
		}
		if s := ae.status(t, a2.ID); s != actions.StatusRejected || ae.stripe.count() != 1 {
			t.Fatalf("after rejection: %s (provider calls %d)", s, ae.stripe.count())
		}
		want(t, sb.get(p.header.Get("Location")), http.StatusOK, "Rejected.")

		// Another supervisor approves Sam's own action.
		tb := ae.browser()
		tb.mustLogin("tom@example.com")
		ti := tb.get("/?view=approvals")
		p = tb.post("/actions/"+own.ID+"/decide", url.Values{"csrf": {csrfOf(t, ti)}, "decision": {"approve"}, "reason": {"fine"}})
		if p.status != http.StatusSeeOther || ae.status(t, own.ID) != actions.StatusSucceeded {
			t.Fatalf("another supervisor approving: %d %s", p.status, p.body)
		}
	})
}

func TestAgentCannotDecide(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ae := newApprovalsEnv(t, d)
		ada := ae.user("ada@example.com", "Ada", auth.RoleAgent)
		ae.user("bea@example.com", "Bea", auth.RoleAgent)
		a := ae.pending(t, ada, "ch_1")
		b := ae.browser()
		b.mustLogin("bea@example.com")
		q := b.get("/")
		want(t, q, http.StatusOK)
		if strings.Contains(q.body, "view=approvals") || strings.Contains(q.body, "/decide") {
			t.Fatal("an agent sees the approvals inbox")
		}
		want(t, b.post("/actions/"+a.ID+"/decide", url.Values{"csrf": {csrfOf(t, q)}, "decision": {"approve"}, "reason": {"ok"}}), http.StatusForbidden)
		if s := ae.status(t, a.ID); s != actions.StatusPendingApproval {
			t.Fatalf("agent decided: %s", s)
		}
	})
}
