package actions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/actions"
	"github.com/recourse-hq/recourse/billing"
	stripeprovider "github.com/recourse-hq/recourse/billing/stripe"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/apispec/apispectest"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/httpx"
	"github.com/recourse-hq/recourse/internal/metrics"
)

// fakeCases is an in-memory stand-in for the case service.
type fakeCases struct {
	mu       sync.Mutex
	cases    map[string]actions.CaseRef
	timeline map[string][]string
	// announced holds "type key" of each outbox event announced.
	announced []string
}

func (f *fakeCases) Announce(_ context.Context, _ *gorm.DB, typ, key, _, _ string, _ *int64, _ *string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.announced = append(f.announced, typ+" "+key)
	return nil
}

func (f *fakeCases) Lookup(_ context.Context, _ *gorm.DB, id string) (actions.CaseRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cases[id]
	if !ok {
		return c, errs.NotFound("no case %q", id)
	}
	return c, nil
}

func (f *fakeCases) Record(_ context.Context, _ *gorm.DB, caseID, actor, typ, summary, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timeline[caseID] = append(f.timeline[caseID], actor+"|"+typ+"|"+summary)
	return nil
}

func (f *fakeCases) OpenRefFor(_ context.Context, _ *gorm.DB, kind cases.Kind, subject string) (actions.CaseRef, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.cases {
		if c.Kind == kind && c.Status == "open" && (c.Charge == subject || c.Subscription == subject || c.Invoice == subject || c.Dispute == subject) {
			return c, true, nil
		}
	}
	return actions.CaseRef{}, false, nil
}

func (f *fakeCases) ApplyActionOutcome(_ context.Context, _ *gorm.DB, caseID string, moves []cases.Move, actor, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cases[caseID]
	for _, m := range moves {
		if m.Kind == c.Kind {
			f.timeline[caseID] = append(f.timeline[caseID], actor+"|move|"+m.Event+"|"+reason)
		}
	}
	return nil
}

func (f *fakeCases) entries(caseID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.timeline[caseID]...)
}

// fakeMirror is an in-memory billing mirror.
type fakeMirror struct {
	mu       sync.Mutex
	subs     map[string]billing.Subscription
	invoices map[string]billing.Invoice
	charges  map[string]billing.Charge
	disputes map[string]billing.Dispute
}

func nf(kind, id string) error { return errs.NotFound("no %s %s", kind, id) }

func (m *fakeMirror) Customer(_ context.Context, id string) (billing.Customer, error) {
	return billing.Customer{ID: id}, nil
}
func (m *fakeMirror) Subscription(_ context.Context, id string) (billing.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.subs[id]
	if !ok {
		return s, nf("subscription", id)
	}
	return s, nil
}
func (m *fakeMirror) Invoice(_ context.Context, id string) (billing.Invoice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.invoices[id]
	if !ok {
		return s, nf("invoice", id)
	}
	return s, nil
}
func (m *fakeMirror) Charge(_ context.Context, id string) (billing.Charge, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.charges[id]
	if !ok {
		return s, nf("charge", id)
	}
	return s, nil
}
func (m *fakeMirror) Dispute(_ context.Context, id string) (billing.Dispute, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.disputes[id]
	if !ok {
		return s, nf("dispute", id)
	}
	return s, nil
}
func (m *fakeMirror) DisputesByCharge(_ context.Context, chargeID string) ([]billing.Dispute, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []billing.Dispute
	for _, d := range m.disputes {
		if d.ChargeID == chargeID {
			out = append(out, d)
		}
	}
	return out, nil
}
func (m *fakeMirror) FraudWarningsByCharge(context.Context, string) ([]billing.FraudWarning, error) {
	return nil, nil
}

// fakeStripe answers like Stripe for the calls actions make, including
// idempotency: the same Idempotency-Key replays the first response.
type fakeStripe struct {
	mu       sync.Mutex
	requests []string // "METHOD path key"
	byKey    map[string][]byte
	created  int
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	key := r.Header.Get("Idempotency-Key")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path+" "+key)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", fmt.Sprintf("req_%d", len(f.requests)))
	if b, ok := f.byKey[key]; ok && key != "" {
		w.Header().Set("Idempotent-Replayed", "true")
		_, _ = w.Write(b)
		return
	}
	f.created++
	var body string
	switch {
	case r.URL.Path == "/v1/refunds":
		body = fmt.Sprintf(`{"id":"re_fake%d","object":"refund","amount":%s,"currency":"usd","status":"succeeded","charge":%q}`, f.created, orZero(r.Form.Get("amount")), r.Form.Get("charge"))
	case strings.HasPrefix(r.URL.Path, "/v1/subscriptions/"):
		body = fmt.Sprintf(`{"id":%q,"object":"subscription","status":"active"}`, strings.TrimPrefix(r.URL.Path, "/v1/subscriptions/"))
	default:
		body = `{"id":"obj_fake","object":"unknown"}`
	}
	f.byKey[key] = []byte(body)
	_, _ = io.WriteString(w, body)
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func (f *fakeStripe) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

type harness struct {
	t        *testing.T
	db       *db.DB
	clock    *clock.Manual
	cases    *fakeCases
	mirror   *fakeMirror
	svc      *actions.Service
	srv      *httptest.Server
	tokens   map[string]string
	provider billing.Provider
}

func newHarnessWithFetcher(t *testing.T, d *db.DB, base string) *harness {
	t.Helper()
	c, err := stripeprovider.New(stripeprovider.Config{APIKey: "sk_test_123", APIBase: base, Timeout: 5 * time.Second, MaxNetworkRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return newHarnessOpts(t, d, c, c)
}

func newHarness(t *testing.T, d *db.DB, provider billing.Provider) *harness {
	t.Helper()
	return newHarnessOpts(t, d, provider, nil)
}

func newHarnessOpts(t *testing.T, d *db.DB, provider billing.Provider, fetcher billing.Fetcher) *harness {
	t.Helper()
	return newHarnessFull(t, d, provider, fetcher, nil, actions.DefaultPolicy())
}

// newHarnessFull is newHarnessOpts with an evidence workbench and a policy.
func newHarnessFull(t *testing.T, d *db.DB, provider billing.Provider, fetcher billing.Fetcher, ev actions.Evidence, pol actions.Policy) *harness {
	t.Helper()
	return newHarnessBudget(t, d, provider, fetcher, ev, pol, 0)
}

// newHarnessBudget is newHarnessFull with a provider call budget (0: the default).
func newHarnessBudget(t *testing.T, d *db.DB, provider billing.Provider, fetcher billing.Fetcher, ev actions.Evidence, pol actions.Policy, budget time.Duration) *harness {
	t.Helper()
	h := &harness{t: t, db: d, clock: clock.NewManual(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)),
		cases:  &fakeCases{cases: map[string]actions.CaseRef{}, timeline: map[string][]string{}},
		mirror: &fakeMirror{subs: map[string]billing.Subscription{}, invoices: map[string]billing.Invoice{}, charges: map[string]billing.Charge{}, disputes: map[string]billing.Dispute{}},
		tokens: map[string]string{}, provider: provider}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	al := audit.New(d, h.clock)
	h.svc = actions.NewService(actions.Config{DB: d, Clock: h.clock, Log: log, Provider: provider, Fetcher: fetcher,
		Mirror: func(*gorm.DB) actions.Mirror { return h.mirror }, Cases: h.cases, Audit: al, Policy: pol, Evidence: ev, CallBudget: budget})
	e := httpx.New(httpx.Options{Logger: log, Metrics: metrics.New()})
	ts := auth.NewTokenStore(d, h.clock)
	api := e.Group("/api/v1", auth.Middleware(ts))
	// GET /policy shows the whole policy file as serve loads it; this
	// harness has only the actions part.
	doc := map[string]any{"actions": pol, "sla": cases.DefaultSLAPolicy(), "disputes": map[string]any{}, "notifications": map[string]any{}}
	actions.NewHTTP(h.svc, al, doc).Register(api)
	h.srv = httptest.NewServer(apispectest.Handler(t, e))
	t.Cleanup(h.srv.Close)
	for name, role := range map[string]auth.Role{"agent": auth.RoleAgent, "analyst": auth.RoleAnalyst, "sup1": auth.RoleSupervisor, "sup2": auth.RoleSupervisor, "admin": auth.RoleAdmin} {
		tok, _, err := ts.Create(context.Background(), name, role)
		if err != nil {
			t.Fatal(err)
		}
		h.tokens[name] = tok
	}
	return h
}

func stripeClient(t *testing.T, base string) billing.Provider {
	c, err := stripeprovider.New(stripeprovider.Config{APIKey: "sk_test_123", APIBase: base, Timeout: 5 * time.Second, MaxNetworkRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type resp struct {
	status int
	body   map[string]any
	header http.Header
}

func (r resp) code() string {
	if e, ok := r.body["error"].(map[string]any); ok {
		return fmt.Sprint(e["code"])
	}
	return ""
}

func (h *harness) call(method, path, who, idemKey string, body any) resp {
	h.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+h.tokens[who])
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer r.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &m)
	return resp{r.StatusCode, m, r.Header}
}

func (h *harness) act(caseID, who, key string, typ string, params map[string]any, reason string) resp {
	h.t.Helper()
	return h.call("POST", "/api/v1/cases/"+caseID+"/actions", who, key, map[string]any{"type": typ, "params": params, "reason": reason})
}

// seed adds a customer with an active subscription, a paid invoice and its charge, and an open case.
func (h *harness) seed(caseID, kind string, amount int64) actions.CaseRef {
	now := h.clock.Now()
	start, end := now.Add(-10*24*time.Hour), now.Add(20*24*time.Hour)
	sfx := caseID
	c := actions.CaseRef{ID: caseID, Kind: cases.Kind(kind), State: "open", Status: cases.StatusOpen, Customer: "cus_" + sfx, Subscription: "sub_" + sfx, Invoice: "in_" + sfx, Charge: "ch_" + sfx}
	h.mirror.mu.Lock()
	h.mirror.subs[c.Subscription] = billing.Subscription{ID: c.Subscription, CustomerID: c.Customer, Status: "active", Currency: "usd", Amount: amount,
		CurrentPeriodStart: &start, CurrentPeriodEnd: &end, LatestInvoiceID: c.Invoice}
	h.mirror.invoices[c.Invoice] = billing.Invoice{ID: c.Invoice, CustomerID: c.Customer, SubscriptionID: c.Subscription, ChargeID: c.Charge, Status: "paid", AmountPaid: amount, AmountDue: amount, Currency: "usd"}
	h.mirror.charges[c.Charge] = billing.Charge{ID: c.Charge, CustomerID: c.Customer, InvoiceID: c.Invoice, Amount: amount, Currency: "usd", Status: "succeeded", Paid: true, Created: start}
	h.mirror.mu.Unlock()
	h.cases.mu.Lock()
	h.cases.cases[caseID] = c
	h.cases.mu.Unlock()
	return c
}

func (h *harness) auditActions(caseID string) []string {
	h.t.Helper()
	var out []string
	if err := h.db.Gorm.Raw("SELECT action FROM audit_log WHERE case_id = ? ORDER BY id", caseID).Scan(&out).Error; err != nil {
		h.t.Fatal(err)
	}
	return out
}
