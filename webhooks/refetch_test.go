package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/webhooks"
)

// objects is a scripted provider's current copies of objects: what a read
// returns, or the error it fails with; asked records every read.
type objects struct {
	mu    sync.Mutex
	state map[string]map[string]any
	fail  map[string]error
	asked []string
}

func (o *objects) ReadObject(_ context.Context, ref billing.ObjectRef) (json.RawMessage, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, ref.ID)
	if err := o.fail[ref.ID]; err != nil {
		return nil, err
	}
	obj, ok := o.state[ref.ID]
	if !ok {
		return nil, errs.NotFound("no such %s: %s", ref.Kind, ref.ID)
	}
	return json.Marshal(obj)
}

func (o *objects) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.asked
	o.asked = nil
	return out
}

func objEvent(id, typ string, created time.Time, obj map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2023-10-16", "created": created.Unix(),
		"type": typ, "livemode": false, "data": map[string]any{"object": obj}})
	return b
}

func clone(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

type refetchStack struct {
	t     *testing.T
	h     *harness
	store *billing.Store
	cases *cases.Service
}

func newRefetchStack(t *testing.T, d *db.DB) *refetchStack {
	st := &refetchStack{t: t}
	st.h = newHarness(t, d, harnessOpts{handlers: func(r *webhooks.Registry, h *harness) {
		st.store = billing.NewStore(d, h.clock)
		svc, err := cases.NewService(cases.Options{DB: d, Clock: h.clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Billing: func(tx *gorm.DB) cases.BillingReader { return st.store.In(tx) }})
		if err != nil {
			t.Fatal(err)
		}
		st.cases = svc
		webhooks.RegisterBilling(r, st.store, svc)
	}})
	return st
}

func (st *refetchStack) deliver(events ...[]byte) {
	st.t.Helper()
	for _, e := range events {
		if r := st.h.deliverSigned(e); r.Status != 200 {
			st.t.Fatalf("deliver: %d %s", r.Status, r.Body)
		}
	}
	st.h.drain()
}

func (st *refetchStack) caseOf(kind, subject string) (state, status string) {
	st.t.Helper()
	var row struct{ State, Status string }
	if err := st.h.db.Gorm.Raw("SELECT state, status FROM cases WHERE kind = ? AND subject_id = ?", kind, subject).Scan(&row).Error; err != nil {
		st.t.Fatal(err)
	}
	return row.State, row.Status
}

func (st *refetchStack) count(table string) (n int64) {
	st.t.Helper()
	if err := st.h.db.Gorm.Raw("SELECT COUNT(*) FROM " + table).Scan(&n).Error; err != nil {
		st.t.Fatal(err)
	}
	return n
}

// A history with a gap and objects whose state moved at Stripe without an
// event: one run closes both — the listed event the inbox lacked is fed,
// each stale object behind an open case is read and applied as a provider
// read, and the cases follow — exactly once. The read beats the older
// listed event it raced with, a newer event beats the read, a second run
// changes nothing; objects synced exactly at the threshold are not read and
// one second past it are; closed cases' objects are not read; a 404 and a
// 500 are reported and the rest still done.
func TestReconcileRefetchesStaleObjects(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		st := newRefetchStack(t, d)
		h := st.h
		ctx := context.Background()
		now := h.clock.Now().UTC().Truncate(time.Second)
		h.clock.Set(now)
		sfx := fmt.Sprint(now.UnixNano() % 1e6)
		id := func(p string) string { return p + "_" + sfx }
		due := now.Add(7 * 24 * time.Hour).Unix()

		cus := map[string]any{"id": id("cus_R"), "object": "customer", "email": "r@example.com"}
		chR := map[string]any{"id": id("ch_R"), "object": "charge", "customer": id("cus_R"), "amount": 4900, "currency": "usd",
			"status": "succeeded", "paid": true, "disputed": true}
		dpR := map[string]any{"id": id("dp_R"), "object": "dispute", "charge": id("ch_R"), "amount": 4900, "currency": "usd",
			"status": "needs_response", "reason": "fraudulent", "evidence_details": map[string]any{"due_by": due}}
		sub := map[string]any{"id": id("sub_R"), "object": "subscription", "customer": id("cus_R"), "status": "past_due", "currency": "usd"}
		inv := map[string]any{"id": id("in_R"), "object": "invoice", "customer": id("cus_R"), "subscription": id("sub_R"), "status": "open",
			"attempt_count": 1, "amount_due": 4900, "amount_remaining": 4900, "currency": "usd", "billing_reason": "subscription_cycle"}
		// At the threshold's edge: the charge one second past it, the dispute exactly at it.
		chE := map[string]any{"id": id("ch_E"), "object": "charge", "customer": id("cus_E"), "amount": 1500, "currency": "usd", "status": "succeeded", "paid": true}
		dpE := map[string]any{"id": id("dp_E"), "object": "dispute", "charge": id("ch_E"), "amount": 1500, "currency": "usd",
			"status": "needs_response", "reason": "general", "evidence_details": map[string]any{"due_by": due}}
		// Stripe answers 500 for this charge and 404 for this dispute.
		chF := map[string]any{"id": id("ch_F"), "object": "charge", "customer": id("cus_F"), "amount": 700, "currency": "usd", "status": "succeeded", "paid": true}
		dpF := map[string]any{"id": id("dp_F"), "object": "dispute", "charge": id("ch_F"), "amount": 700, "currency": "usd",
			"status": "needs_response", "reason": "general", "evidence_details": map[string]any{"due_by": due}}
		// A closed case: its objects are not read.
		chC := map[string]any{"id": id("ch_C"), "object": "charge", "customer": id("cus_C"), "amount": 900, "currency": "usd", "status": "succeeded", "paid": true}
		dpC := map[string]any{"id": id("dp_C"), "object": "dispute", "charge": id("ch_C"), "amount": 900, "currency": "usd",
			"status": "needs_response", "reason": "general", "evidence_details": map[string]any{"due_by": due}}
		dpCWon := clone(dpC)
		dpCWon["status"] = "won"

		at := func(d time.Duration) time.Time { return now.Add(-d) }
		st.deliver(
			objEvent(id("evt_cus"), "customer.created", at(60*time.Hour), cus),
			objEvent(id("evt_chR"), "charge.succeeded", at(50*time.Hour), chR),
			objEvent(id("evt_dpR"), "charge.dispute.created", at(48*time.Hour), dpR),
			objEvent(id("evt_sub"), "customer.subscription.updated", at(40*time.Hour), sub),
			objEvent(id("evt_inv"), "invoice.payment_failed", at(30*time.Hour), inv),
			objEvent(id("evt_chE"), "charge.succeeded", at(24*time.Hour+time.Second), chE),
			objEvent(id("evt_dpE"), "charge.dispute.created", at(24*time.Hour), dpE),
			objEvent(id("evt_chF"), "charge.succeeded", at(50*time.Hour), chF),
			objEvent(id("evt_dpF"), "charge.dispute.created", at(48*time.Hour), dpF),
			objEvent(id("evt_chC"), "charge.succeeded", at(50*time.Hour), chC),
			objEvent(id("evt_dpC"), "charge.dispute.created", at(50*time.Hour), dpC),
			objEvent(id("evt_dpCw"), "charge.dispute.closed", at(49*time.Hour), dpCWon),
		)
		if state, status := st.caseOf("dispute", id("dp_R")); status != "open" {
			t.Fatalf("dispute case before: %s %s", state, status)
		}
		if _, status := st.caseOf("dispute", id("dp_C")); status != "closed" {
			t.Fatalf("won dispute's case: %s", status)
		}
		if _, status := st.caseOf("payment_failure", id("in_R")); status != "open" {
			t.Fatalf("payment failure case: %s", status)
		}

		// Stripe's side: the dispute was lost and the invoice paid, with no
		// event we received; Stripe's event list has one event the inbox
		// lacks, older than the loss (a gap).
		dpRLost := clone(dpR)
		dpRLost["status"] = "lost"
		invPaid := clone(inv)
		invPaid["status"], invPaid["amount_paid"], invPaid["amount_remaining"] = "paid", 4900, 0
		dpRReview := clone(dpR)
		dpRReview["status"] = "under_review"
		gap := objEvent(id("evt_gap"), "charge.dispute.updated", at(20*time.Hour), dpRReview)
		hist := &history{events: [][]byte{gap}, created: []time.Time{at(20 * time.Hour)}}
		prov := &objects{state: map[string]map[string]any{}, fail: map[string]error{
			id("ch_F"): &billing.ProviderError{Type: "api_error", Message: "500 from Stripe", HTTPStatus: 500, Retryable: true},
		}}
		for _, o := range []map[string]any{cus, chR, dpRLost, sub, invPaid, chE, dpE, chC, dpCWon} {
			prov.state[o["id"].(string)] = o
		}
		reg := prometheus.NewRegistry()
		rec := webhooks.NewReconciler(d, h.inbox, hist, h.clock, slog.New(slog.NewTextHandler(io.Discard, nil)), audit.New(d, h.clock), reg, nil).
			WithRefetch(webhooks.RefetchOptions{Reader: prov, Store: st.store, Cases: st.cases, StaleAfter: 24 * time.Hour}, reg)

		rep, err := rec.Run(ctx, now.Add(-72*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		f := rep.Refetch
		if rep.Missing != 1 || f == nil || !f.Cutoff.Equal(now.Add(-24*time.Hour)) {
			t.Fatalf("report %+v %+v", rep, f)
		}
		// Read in kind then id order; not the dispute synced exactly at the
		// threshold, nor the closed case's objects, nor customers never mirrored.
		wantAsked := []string{id("cus_R"), id("sub_R"), id("in_R"), id("ch_E"), id("ch_F"), id("ch_R"), id("dp_F"), id("dp_R")}
		if got := prov.take(); !slices.Equal(got, wantAsked) {
			t.Fatalf("read %v\nwant %v", got, wantAsked)
		}
		if f.Stale != 8 || f.Checked != 6 || f.Changed != 2 || f.Fixed != 2 || f.Failed != 2 || f.Superseded != 0 {
			t.Fatalf("refetch %+v", f)
		}
		failed := map[string]string{}
		for _, o := range f.FailedObjects {
			failed[o.ID] = o.Error
		}
		if !strings.Contains(failed[id("ch_F")], "500 from Stripe") || !strings.Contains(failed[id("dp_F")], "no such dispute") {
			t.Fatalf("failed objects %+v", f.FailedObjects)
		}
		changed := map[string]webhooks.ObjectOutcome{}
		for _, o := range f.ChangedObjects {
			changed[o.ID] = o
		}
		if o := changed[id("dp_R")]; o.Before != "needs_response" || o.After != "lost" || o.Cases != 1 {
			t.Fatalf("dispute outcome %+v", o)
		}
		if o := changed[id("in_R")]; !strings.HasPrefix(o.Before, "open") || !strings.HasPrefix(o.After, "paid") || o.Cases < 1 {
			t.Fatalf("invoice outcome %+v", o)
		}
		// The mirror holds Stripe's state, synced at the read's time; the cases moved as the events would have moved them.
		dp, err := st.store.Dispute(ctx, id("dp_R"))
		if err != nil || dp.Status != "lost" || !dp.EventCreated.Equal(now) || dp.EventID != billing.ReadID(billing.ObjectRef{Kind: billing.KindDispute, ID: id("dp_R")}, now) {
			t.Fatalf("mirrored dispute %+v %v", dp, err)
		}
		if state, status := st.caseOf("dispute", id("dp_R")); state != "lost" || status != "closed" {
			t.Fatalf("dispute case after the read: %s %s", state, status)
		}
		if state, status := st.caseOf("payment_failure", id("in_R")); status != "closed" {
			t.Fatalf("payment failure case after the read: %s %s", state, status)
		}
		// Unchanged objects are synced too, without a timeline fact.
		if c, err := st.store.Charge(ctx, id("ch_R")); err != nil || !c.EventCreated.Equal(now) {
			t.Fatalf("charge %+v %v", c, err)
		}
		var facts int64
		d.Gorm.Raw("SELECT COUNT(*) FROM billing_timeline WHERE event_type = ?", billing.ReadEventType).Scan(&facts)
		if facts != 2 {
			t.Fatalf("%d read facts on billing timelines, want 2", facts)
		}
		// Recorded: the run row, the audit entry, the metrics.
		var run struct{ StaleChecked, StaleChanged, StaleFixed, StaleFailed int }
		d.Gorm.Raw("SELECT stale_checked, stale_changed, stale_fixed, stale_failed FROM reconcile_runs ORDER BY id DESC LIMIT 1").Scan(&run)
		if run.StaleChecked != 6 || run.StaleChanged != 2 || run.StaleFixed != 2 || run.StaleFailed != 2 {
			t.Fatalf("run row %+v", run)
		}
		var detail string
		d.Gorm.Raw("SELECT detail FROM audit_log WHERE action = 'webhooks.reconcile' ORDER BY id DESC LIMIT 1").Scan(&detail)
		if !strings.Contains(detail, "checked 6, changed 2, fixed 2, superseded 0, failed 2") {
			t.Fatalf("audit detail %q", detail)
		}
		for outcome, want := range map[string]float64{"checked": 6, "changed": 2, "fixed": 2, "failed": 2} {
			if got := testutil.ToFloat64(rec.Metrics().StaleObjects.WithLabelValues(outcome)); got != want {
				t.Fatalf("metric %s = %v, want %v", outcome, got, want)
			}
		}

		// The gap's event, older than the read, is applied after it: it
		// changes neither the mirror nor the case.
		h.drain()
		if n := h.countRows("event_id = ? AND status = 'processed'", id("evt_gap")); n != 1 {
			t.Fatalf("gap event not applied: %d", n)
		}
		if dp, _ := st.store.Dispute(ctx, id("dp_R")); dp.Status != "lost" {
			t.Fatalf("an older event overwrote the read: %s", dp.Status)
		}
		if state, status := st.caseOf("dispute", id("dp_R")); state != "lost" || status != "closed" {
			t.Fatalf("an older event moved the case: %s %s", state, status)
		}

		// An event created after the read wins over it.
		h.clock.Advance(time.Minute)
		subCanceled := clone(sub)
		subCanceled["status"] = "canceled"
		st.deliver(objEvent(id("evt_subc"), "customer.subscription.updated", now.Add(30*time.Second), subCanceled))
		if s, _ := st.store.Subscription(ctx, id("sub_R")); s.Status != "canceled" {
			t.Fatalf("a newer event lost to the read: %s", s.Status)
		}

		// The second run changes nothing: the two that failed fail again,
		// the dispute that sat exactly at the threshold is now past it and
		// read, unchanged; no timeline grows.
		caseEntries, billingFacts := st.count("case_timeline"), st.count("billing_timeline")
		since, _ := rec.Since(ctx, 0)
		rep2, err := rec.Run(ctx, since)
		if err != nil {
			t.Fatal(err)
		}
		if f := rep2.Refetch; rep2.Missing != 0 || f.Stale != 3 || f.Checked != 1 || f.Changed != 0 || f.Failed != 2 {
			t.Fatalf("second run %+v %+v", rep2, f)
		}
		if got := prov.take(); !slices.Equal(got, []string{id("ch_F"), id("dp_E"), id("dp_F")}) {
			t.Fatalf("second run read %v", got)
		}
		if c, b := st.count("case_timeline"), st.count("billing_timeline"); c != caseEntries || b != billingFacts {
			t.Fatalf("second run grew timelines: cases %d → %d, billing %d → %d", caseEntries, c, billingFacts, b)
		}
	})
}

// A read no newer than the mirror's state changes nothing; the same read
// applied twice is one; a read older than the stored event is superseded.
func TestApplyReadOrdering(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		st := newRefetchStack(t, d)
		ctx := context.Background()
		now := st.h.clock.Now().UTC().Truncate(time.Second)
		sfx := fmt.Sprint(now.UnixNano() % 1e6)
		ref := billing.ObjectRef{Kind: billing.KindSubscription, ID: "sub_O_" + sfx}
		sub := map[string]any{"id": ref.ID, "object": "subscription", "customer": "cus_O", "status": "active", "currency": "usd",
			"created": now.Add(-30 * 24 * time.Hour).Unix()}
		st.deliver(objEvent("evt_O_"+sfx, "customer.subscription.updated", now, sub))

		pastDue := clone(sub)
		pastDue["status"] = "past_due"
		payload, _ := json.Marshal(pastDue)
		// Older than the event: superseded.
		res, err := st.store.ApplyRead(ctx, billing.ProviderRead{Ref: ref, At: now.Add(-time.Second), Payload: payload})
		if err != nil || res.Changed || !res.Superseded {
			t.Fatalf("older read: %+v %v", res, err)
		}
		if s, _ := st.store.Subscription(ctx, ref.ID); s.Status != "active" || s.EventID != "evt_O_"+sfx {
			t.Fatalf("older read moved the mirror: %+v", s)
		}
		// Newer: applied, once.
		for i := range 2 {
			res, err = st.store.ApplyRead(ctx, billing.ProviderRead{Ref: ref, At: now.Add(time.Second + 300*time.Millisecond), Payload: payload})
			if err != nil || res.Changed != (i == 0) || res.Superseded {
				t.Fatalf("newer read #%d: %+v %v", i, res, err)
			}
		}
		s, _ := st.store.Subscription(ctx, ref.ID)
		if s.Status != "past_due" || !s.EventCreated.Equal(now.Add(time.Second)) || res.Change.Previous.Status != "" {
			t.Fatalf("after the newer read: %+v", s)
		}
		// A read of another kind's object is refused.
		if _, err := st.store.ApplyRead(ctx, billing.ProviderRead{Ref: billing.ObjectRef{Kind: billing.KindCharge, ID: ref.ID}, At: now, Payload: payload}); !errs.Is(err, errs.EINVALID) {
			t.Fatalf("wrong object: %v", err)
		}
	})
}
