package cases

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
)

// t0 is the tests' starting time.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fakeMirror is an in-memory BillingReader.
type fakeMirror struct {
	mu            sync.Mutex
	customers     map[string]billing.Customer
	subscriptions map[string]billing.Subscription
	invoices      map[string]billing.Invoice
	charges       map[string]billing.Charge
	disputes      map[string]billing.Dispute
	warnings      map[string]billing.FraudWarning
}

func newFakeMirror() *fakeMirror {
	return &fakeMirror{customers: map[string]billing.Customer{}, subscriptions: map[string]billing.Subscription{},
		invoices: map[string]billing.Invoice{}, charges: map[string]billing.Charge{}, disputes: map[string]billing.Dispute{},
		warnings: map[string]billing.FraudWarning{}}
}

func get[T any](m *fakeMirror, tbl map[string]T, kind, id string) (T, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := tbl[id]
	if !ok {
		var zero T
		return zero, errs.NotFound("%s %s not mirrored", kind, id)
	}
	return v, nil
}

func (m *fakeMirror) Customer(_ context.Context, id string) (billing.Customer, error) {
	return get(m, m.customers, "customer", id)
}
func (m *fakeMirror) Subscription(_ context.Context, id string) (billing.Subscription, error) {
	return get(m, m.subscriptions, "subscription", id)
}
func (m *fakeMirror) Invoice(_ context.Context, id string) (billing.Invoice, error) {
	return get(m, m.invoices, "invoice", id)
}
func (m *fakeMirror) Charge(_ context.Context, id string) (billing.Charge, error) {
	return get(m, m.charges, "charge", id)
}
func (m *fakeMirror) Dispute(_ context.Context, id string) (billing.Dispute, error) {
	return get(m, m.disputes, "dispute", id)
}
func (m *fakeMirror) InvoicesBySubscription(_ context.Context, subID string) ([]billing.Invoice, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []billing.Invoice
	for _, v := range m.invoices {
		if v.SubscriptionID == subID {
			out = append(out, v)
		}
	}
	return out, nil
}
func (m *fakeMirror) DisputesByCharge(_ context.Context, chargeID string) ([]billing.Dispute, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []billing.Dispute
	for _, v := range m.disputes {
		if v.ChargeID == chargeID {
			out = append(out, v)
		}
	}
	return out, nil
}
func (m *fakeMirror) FraudWarningsByCharge(_ context.Context, chargeID string) ([]billing.FraudWarning, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []billing.FraudWarning
	for _, v := range m.warnings {
		if v.ChargeID == chargeID {
			out = append(out, v)
		}
	}
	return out, nil
}

// put stores objects in the mirror.
func (m *fakeMirror) put(objs ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range objs {
		switch v := o.(type) {
		case billing.Customer:
			m.customers[v.ID] = v
		case billing.Subscription:
			m.subscriptions[v.ID] = v
		case billing.Invoice:
			m.invoices[v.ID] = v
		case billing.Charge:
			m.charges[v.ID] = v
		case billing.Dispute:
			m.disputes[v.ID] = v
		case billing.FraudWarning:
			m.warnings[v.ID] = v
		default:
			panic(fmt.Sprintf("fakeMirror: cannot store %T", o))
		}
	}
}

// fixture is a service over a fresh database with a manual clock and a
// fake mirror.
type fixture struct {
	t      testing.TB
	db     *db.DB
	clock  *clock.Manual
	mirror *fakeMirror
	svc    *Service
	reg    *prometheus.Registry
	echoes *fakeEchoes
}

// fakeEchoes stands in for actions.Echoes: idempotency key → action.
type fakeEchoes struct {
	mu   sync.Mutex
	keys map[string]ActionEcho
}

func (e *fakeEchoes) add(key string, echo ActionEcho) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys[key] = echo
}

func (e *fakeEchoes) FindEcho(_ context.Context, _ *gorm.DB, key string, _ billing.ObjectKind, _ string) (ActionEcho, bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	echo, ok := e.keys[key]
	return echo, ok, nil
}

type fixtureOpts struct {
	sla *SLAPolicy
}

func newFixture(t testing.TB, d *db.DB, o ...fixtureOpts) *fixture {
	t.Helper()
	f := &fixture{t: t, db: d, clock: clock.NewManual(t0), mirror: newFakeMirror(), reg: prometheus.NewRegistry(),
		echoes: &fakeEchoes{keys: map[string]ActionEcho{}}}
	opt := Options{DB: d, Clock: f.clock, Billing: func(*gorm.DB) BillingReader { return f.mirror }, Registerer: f.reg,
		Echoes: f.echoes}
	if len(o) > 0 {
		opt.SLA = o[0].sla
	}
	s, err := NewService(opt)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	f.svc = s
	return f
}

var evSeq atomic.Int64

// evID returns a fresh event id.
func evID() string { return fmt.Sprintf("evt_%06d", evSeq.Add(1)) }

// change builds a billing.Change for obj (one of the billing object types).
func change(id, typ string, created time.Time, obj any) billing.Change {
	ch := billing.Change{EventID: id, EventType: typ, EventCreated: created, Summary: typ + " (test)"}
	switch v := obj.(type) {
	case billing.Dispute:
		ch.Object, ch.ObjectID, ch.Dispute, ch.CustomerID = billing.KindDispute, v.ID, &v, v.CustomerID
	case billing.FraudWarning:
		ch.Object, ch.ObjectID, ch.FraudWarning, ch.CustomerID = billing.KindFraudWarning, v.ID, &v, v.CustomerID
	case billing.Charge:
		ch.Object, ch.ObjectID, ch.Charge, ch.CustomerID = billing.KindCharge, v.ID, &v, v.CustomerID
	case billing.Refund:
		ch.Object, ch.ObjectID, ch.Refund, ch.CustomerID = billing.KindRefund, v.ID, &v, v.CustomerID
	case billing.Invoice:
		ch.Object, ch.ObjectID, ch.Invoice, ch.CustomerID = billing.KindInvoice, v.ID, &v, v.CustomerID
	case billing.Subscription:
		ch.Object, ch.ObjectID, ch.Subscription, ch.CustomerID = billing.KindSubscription, v.ID, &v, v.CustomerID
	case billing.Customer:
		ch.Object, ch.ObjectID, ch.Customer, ch.CustomerID = billing.KindCustomer, v.ID, &v, v.ID
	default:
		panic(fmt.Sprintf("change: unsupported %T", obj))
	}
	return ch
}

// apply runs OnBillingChange in its own transaction, as the worker does.
func (f *fixture) apply(ch billing.Change) error {
	return f.db.Transact(context.Background(), func(tx *gorm.DB) error {
		return f.svc.OnBillingChange(context.Background(), tx, ch)
	})
}

func (f *fixture) mustApply(chs ...billing.Change) {
	f.t.Helper()
	for _, ch := range chs {
		if err := f.apply(ch); err != nil {
			f.t.Fatalf("apply %s %s: %v", ch.EventType, ch.EventID, err)
		}
	}
}

// casesFor returns every case of kind on subject, oldest first.
func (f *fixture) casesFor(kind Kind, subject string) []Case {
	f.t.Helper()
	var rows []caseRow
	if err := f.db.Gorm.Where("kind = ? AND subject_id = ?", string(kind), subject).Order("created_at, id").Find(&rows).Error; err != nil {
		f.t.Fatalf("cases for %s %s: %v", kind, subject, err)
	}
	out := make([]Case, len(rows))
	for i, r := range rows {
		out[i] = r.toCase()
	}
	return out
}

// only returns the one case of kind on subject, failing otherwise.
func (f *fixture) only(kind Kind, subject string) Case {
	f.t.Helper()
	cs := f.casesFor(kind, subject)
	if len(cs) != 1 {
		f.t.Fatalf("want exactly one %s case for %s, got %d", kind, subject, len(cs))
	}
	return cs[0]
}

func (f *fixture) timeline(id string) []TimelineEntry {
	f.t.Helper()
	tl, err := f.svc.Timeline(context.Background(), id)
	if err != nil {
		f.t.Fatalf("timeline %s: %v", id, err)
	}
	return tl
}

// fire runs FireInTx in its own transaction.
func (f *fixture) fire(id, event, actor string) error {
	return f.db.Transact(context.Background(), func(tx *gorm.DB) error {
		return f.svc.FireInTx(context.Background(), tx, id, event, actor, "test")
	})
}

func wantState(t testing.TB, c Case, state string, status Status) {
	t.Helper()
	if c.State != state || c.Status != status {
		t.Fatalf("case %s (%s): state %s/%s, want %s/%s", c.ID, c.Kind, c.State, c.Status, state, status)
	}
	lc := mustLifecycle(c.Kind)
	if res, closed := lc.Closed[state]; closed {
		if c.Resolution == nil || *c.Resolution != res || c.ClosedAt == nil {
			t.Fatalf("case %s closed in %s: resolution %v closed_at %v, want %s", c.ID, state, c.Resolution, c.ClosedAt, res)
		}
	} else if c.Resolution != nil || c.ClosedAt != nil {
		t.Fatalf("open case %s has resolution %v closed_at %v", c.ID, c.Resolution, c.ClosedAt)
	}
}

func wantLink(t testing.TB, name string, got *string, want string) {
	t.Helper()
	if deref(got) != want {
		t.Fatalf("links.%s = %q, want %q", name, deref(got), want)
	}
}

// checkProviderTimeline checks every webhook entry names stripe and its event.
func checkProviderTimeline(t testing.TB, tl []TimelineEntry) {
	t.Helper()
	for _, e := range tl {
		if e.ActorType == ActorStripe && (e.Actor != StripeActor || e.EventID == nil || *e.EventID == "") {
			t.Fatalf("provider entry without stripe actor or event id: %+v", e)
		}
	}
}

func principalOf(name string, role auth.Role) auth.Principal {
	return auth.Principal{Name: name, Role: role}
}
