package disputes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// storeFacts feeds the real facts store (disputes.FactStore) of the
// bench's database.
type storeFacts struct {
	t     testing.TB
	clk   *clock.Manual
	store *disputes.FactStore
}

// add stores facts through PutFacts, in batches of MaxFactsPerBatch, and
// fails unless every one is accepted.
func (f *storeFacts) add(fs ...disputes.Fact) {
	f.t.Helper()
	// The store refuses facts from the future: send them as of the latest.
	now := f.clk.Now()
	latest := now
	for _, x := range fs {
		if x.OccurredAt.After(latest) {
			latest = x.OccurredAt
		}
	}
	f.clk.Set(latest)
	defer f.clk.Set(now)
	byCustomer := map[string][]disputes.FactInput{}
	var order []string
	for _, x := range fs {
		if _, ok := byCustomer[x.CustomerID]; !ok {
			order = append(order, x.CustomerID)
		}
		byCustomer[x.CustomerID] = append(byCustomer[x.CustomerID], disputes.FactInput{ID: x.ID, Kind: x.Kind, OccurredAt: x.OccurredAt.UTC().Format(time.RFC3339Nano),
			IP: x.IP, DeviceID: x.DeviceID, DeviceFingerprint: x.DeviceFingerprint, AccountID: x.AccountID, UserAgent: x.UserAgent,
			Policy: x.Policy, Channel: x.Channel, Template: x.Template, Data: x.Data})
	}
	for _, cust := range order {
		in := byCustomer[cust]
		for len(in) > 0 {
			n := min(len(in), disputes.MaxFactsPerBatch)
			res, err := f.store.PutFacts(context.Background(), cust, in[:n])
			if err != nil {
				f.t.Fatal(err)
			}
			if res.Accepted != n {
				f.t.Fatalf("facts of %s: %d of %d accepted, %d duplicates, first rejection %+v", cust, res.Accepted, n, res.Duplicates, res.Rejected[0])
			}
			in = in[n:]
		}
	}
}

// policy stores a policy document.
func (f *storeFacts) policy(doc disputes.PolicyDocument) {
	f.t.Helper()
	if _, _, err := f.store.PutPolicy(context.Background(), disputes.PolicyInput{Key: doc.Key, Version: doc.Version, Title: doc.Title, Body: doc.Body, EffectiveAt: doc.EffectiveAt}); err != nil {
		f.t.Fatal(err)
	}
}

// bench is a workbench over a real database, the real mirror and the real
// case service.
type bench struct {
	t     testing.TB
	d     *db.DB
	clk   *clock.Manual
	store *billing.Store
	cases *cases.Service
	facts *storeFacts
	wb    *disputes.Workbench
}

func newBench(t testing.TB, d *db.DB) *bench {
	t.Helper()
	b := &bench{t: t, d: d, clk: clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	b.facts = &storeFacts{t: t, clk: b.clk, store: disputes.NewFactStore(d, b.clk)}
	b.store = billing.NewStore(d, b.clk)
	var err error
	b.cases, err = cases.NewService(cases.Options{DB: d, Clock: b.clk, Audit: audit.New(d, b.clk),
		Billing: func(tx *gorm.DB) cases.BillingReader { return b.store.In(tx) }})
	if err != nil {
		t.Fatal(err)
	}
	b.wb = disputes.NewWorkbench(disputes.WorkbenchOptions{DB: d, Clock: b.clk, Billing: b.store, Cases: b.cases, Facts: b.facts.store,
		Policy: disputes.DefaultPolicy(), Audit: audit.New(d, b.clk)})
	return b
}

// chargeback posts a chargeback story through the real mirror and case
// handling, up to the dispute's funds withdrawal (the dispute then needs a
// response), and returns the dispute case, the dispute and its charge.
func (b *bench) chargeback(seed uint64, start time.Time, opt stripetest.ChargebackOptions) (cases.Case, billing.Dispute, billing.Charge) {
	b.t.Helper()
	g := stripetest.New(seed, stripetest.WithClock(b.clk.Now), stripetest.WithPlans(stripetest.Plan{PriceID: "price_pro_monthly", ProductID: "prod_pro",
		Name: "Pro", UnitAmount: 1900, Currency: "usd", Interval: "month", TrialDays: 14}))
	opt.NoResponse = true
	evs := g.Chargeback(start, opt)
	ctx := context.Background()
	disputeID := ""
	for _, ev := range evs {
		b.clk.Set(ev.Created.Add(time.Second))
		err := b.d.Transact(ctx, func(tx *gorm.DB) error {
			ch, err := b.store.In(tx).Apply(ctx, billing.ProviderEvent{ID: ev.ID, Type: ev.Type, Created: ev.Created, APIVersion: "2023-10-16", Payload: ev.Payload})
			if errors.Is(err, billing.ErrNotBillingEvent) {
				return nil
			}
			if err != nil {
				return err
			}
			return b.cases.OnBillingChange(ctx, tx, ch)
		})
		if err != nil {
			b.t.Fatalf("%s %s: %v", ev.Type, ev.ID, err)
		}
		if ev.Type == "charge.dispute.created" {
			disputeID, _ = ev.Object["id"].(string)
		}
		if ev.Type == "charge.dispute.funds_withdrawn" {
			break
		}
	}
	if disputeID == "" {
		b.t.Fatal("the story has no dispute")
	}
	b.clk.Advance(time.Hour)
	c, ok, err := b.cases.OpenCaseFor(ctx, b.d.Gorm, cases.KindDispute, disputeID)
	if err != nil || !ok {
		b.t.Fatalf("no open dispute case for %s: %v", disputeID, err)
	}
	dp, err := b.store.Dispute(ctx, disputeID)
	if err != nil {
		b.t.Fatal(err)
	}
	ch, err := b.store.Charge(ctx, dp.ChargeID)
	if err != nil {
		b.t.Fatal(err)
	}
	return c, dp, ch
}

var factSeq int

func fact(customer string, kind disputes.FactKind, at time.Time, mod ...func(*disputes.Fact)) disputes.Fact {
	factSeq++
	f := disputes.Fact{ID: fmt.Sprintf("f_%d", factSeq), CustomerID: customer, Kind: kind, OccurredAt: at.UTC(), ReceivedAt: at.UTC()}
	for _, m := range mod {
		m(&f)
	}
	return f
}

func ip(v string) func(*disputes.Fact)      { return func(f *disputes.Fact) { f.IP = v } }
func device(v string) func(*disputes.Fact)  { return func(f *disputes.Fact) { f.DeviceID = v } }
func account(v string) func(*disputes.Fact) { return func(f *disputes.Fact) { f.AccountID = v } }
func template(v string) func(*disputes.Fact) {
	return func(f *disputes.Fact) { f.Template = v; f.Channel = "email" }
}
func policy(key, version string) func(*disputes.Fact) {
	return func(f *disputes.Fact) { f.Policy = &disputes.PolicyRef{Key: key, Version: version} }
}
func data(js string) func(*disputes.Fact) { return func(f *disputes.Fact) { f.Data = []byte(js) } }

// pdfText returns the decoded content streams of each page.
func pdfText(t testing.TB, pdf []byte) []string {
	t.Helper()
	conf := disputes.PDFConfig() // pdfcpu's globals are set once, there
	ctx, err := api.ReadContext(bytes.NewReader(pdf), conf)
	if err != nil {
		t.Fatalf("read PDF: %v", err)
	}
	if err := api.ValidateContext(ctx); err != nil {
		t.Fatalf("validate PDF: %v", err)
	}
	var pages []string
	for i := 1; i <= ctx.PageCount; i++ {
		r, err := pdfcpu.ExtractPageContent(ctx, i)
		if err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
		b, _ := io.ReadAll(r)
		pages = append(pages, string(b))
	}
	return pages
}

// TestAssembleSubscriptionCanceled assembles a Visa 13.2 dispute posted
// through the mirror, with the customer's facts and another customer's.
func TestAssembleSubscriptionCanceled(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := newBench(t, d)
		ctx := context.Background()
		start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		c, dp, ch := b.chargeback(101, start, stripetest.ChargebackOptions{Brand: "visa", Reason: "subscription_canceled", Code: "13.2", Renewals: 2})
		cust := ch.CustomerID
		at := ch.Created
		b.facts.policy(disputes.PolicyDocument{Key: "cancellation", Version: "3",
			Title: "Cancellation policy", Body: "You can cancel at any time from Settings; the cancellation takes effect at the end of the paid period.", EffectiveAt: start.AddDate(-1, 0, 0)})
		b.facts.add(
			// Out of order on purpose: the log must come out in time order.
			fact(cust, disputes.FactLogin, at.Add(48*time.Hour), ip("203.0.113.7"), device("dev_customer_0001")),
			fact(cust, disputes.FactSignup, start, ip("203.0.113.7"), device("dev_customer_0001"), account("acct_1")),
			fact(cust, disputes.FactConsent, start.Add(time.Minute), ip("203.0.113.7"), policy("cancellation", "3"), data(`{"flow":"checkout"}`)),
			fact(cust, disputes.FactNotice, at.Add(-7*24*time.Hour), template("renewal_reminder_7d")),
			fact(cust, disputes.FactUsage, at.Add(72*time.Hour), ip("203.0.113.8"), device("dev_customer_0001")),
			fact(cust, disputes.FactLogin, at.Add(24*time.Hour), ip("203.0.113.7"), device("dev_customer_0001")),
			fact(cust, disputes.FactCommunication, at.Add(96*time.Hour), data(`{"direction":"inbound","subject":"Help","body":"How do I export my data? My card 4242 4242 4242 4242"}`)),
			// Another customer's facts: must never appear.
			fact("cus_OTHER", disputes.FactLogin, at.Add(time.Hour), ip("198.51.100.99"), device("OTHER-CUSTOMER-DEVICE")),
			fact("cus_OTHER", disputes.FactConsent, at.Add(-time.Hour), ip("198.51.100.99"), policy("cancellation", "3")),
		)

		doc, err := b.wb.Evidence(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if doc.Reason != "subscription_canceled" || doc.NetworkReasonCode != "13.2" || doc.Network != "visa" || !strings.Contains(doc.Meaning, "recurring") {
			t.Fatalf("reason/network: %+v", doc)
		}
		if doc.Draft != nil || doc.CE3 != nil {
			t.Fatalf("draft %v ce3 %v before assembly", doc.Draft, doc.CE3)
		}
		if doc.Deadline.DueBy == nil || doc.Deadline.Urgency == "" || doc.Deadline.SecondsLeft <= 0 {
			t.Fatalf("deadline: %+v", doc.Deadline)
		}
		status := map[disputes.EvidenceField]string{}
		for _, it := range doc.Checklist.Items {
			status[it.Field] = it.Status
		}
		if status[disputes.FieldCancellationRebuttal] != disputes.ItemCanAssemble || status[disputes.FieldCancellationPolicy] != disputes.ItemCanAssemble {
			t.Fatalf("checklist before assembly: %v", status)
		}
		if r := doc.Recommendation; r.Action == "" || r.Amount != dp.Amount || r.WinRate <= 0 || r.LifetimeValue <= 0 || r.Why == "" {
			t.Fatalf("recommendation: %+v", r)
		}

		doc, err = b.wb.Assemble(ctx, c.ID, "ana", disputes.AssembleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if doc.Draft == nil || doc.Draft.Version != 1 || doc.Draft.Status != disputes.DraftStatusDraft {
			t.Fatalf("draft: %+v", doc.Draft)
		}
		for _, it := range doc.Checklist.Items {
			if it.Field == disputes.FieldCancellationRebuttal && it.Status != disputes.ItemHave {
				t.Fatalf("after assembly %s is %s", it.Field, it.Status)
			}
		}
		f := doc.Draft.Fields
		// Access log in time order.
		log := f["access_activity_log"]
		var times []string
		for _, line := range strings.Split(log, "\n") {
			if len(line) > 20 && line[4] == '-' {
				times = append(times, line[:20])
			}
		}
		if len(times) != 4 || !slices.IsSorted(times) {
			t.Fatalf("access log not in time order (%d lines):\n%s", len(times), log)
		}
		reb := f["cancellation_rebuttal"]
		for _, want := range []string{`"cancellation"`, "version 3", "renewal_reminder_7d", "No cancellation request", "Exhibit"} {
			if !strings.Contains(reb, want) {
				t.Errorf("cancellation_rebuttal lacks %q:\n%s", want, reb)
			}
		}
		if !strings.Contains(f["cancellation_policy_disclosure"], "version 3") || f["customer_purchase_ip"] != "203.0.113.7" {
			t.Errorf("disclosure %q ip %q", f["cancellation_policy_disclosure"], f["customer_purchase_ip"])
		}
		if f["customer_email_address"] == "" || f["service_date"] == "" || f["product_description"] == "" || !strings.Contains(f["uncategorized_text"], dp.ID) {
			t.Errorf("fields: %v", f)
		}

		pkt, err := b.wb.Packet(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		pages := pdfText(t, pkt)
		n, err := disputes.CountPages(pkt)
		if err != nil || n != len(pages) || n < 3 || n >= disputes.MaxPagesMastercard || len(pkt) > disputes.MaxEvidenceBytes || doc.Draft.PacketPages != n {
			t.Fatalf("packet: %d pages (%v), %d bytes, draft says %d", n, err, len(pkt), doc.Draft.PacketPages)
		}
		for _, want := range []string{dp.ID, ch.ID, "Our position", "The claim answered", "Exhibit 1", "reverse chargeback"} {
			if !strings.Contains(pages[0], want) {
				t.Errorf("the letter lacks %q", want)
			}
		}
		for i, p := range pages[1:] {
			if strings.HasPrefix(strings.TrimSpace(p), "BT") && strings.Contains(p, "Exhibit") && !strings.Contains(p, "What it proves:") && strings.Contains(p, "Exhibit "+fmt.Sprint(i+1)+" ") {
				t.Errorf("page %d: an exhibit without 'What it proves:'", i+2)
			}
		}
		if !strings.Contains(pages[1], "Exhibit 1") || !strings.Contains(pages[1], "What it proves:") {
			t.Errorf("page 2 does not open exhibit 1:\n%.400s", pages[1])
		}
		all := strings.Join(pages, "\n")
		for k, v := range f {
			all += k + v
		}
		for _, leak := range []string{"198.51.100.99", "OTHER-CUSTOMER", "4242 4242 4242 4242"} {
			if strings.Contains(all, leak) {
				t.Errorf("%q appears in the evidence", leak)
			}
		}

		pkg, err := b.wb.Package(ctx, d.Gorm, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if pkg.Version != 1 || pkg.DisputeID != dp.ID || pkg.Brand != "visa" || len(pkg.Files) != 1 || pkg.Files[0].Field != disputes.FieldUncategorizedFile || !bytes.Equal(pkg.Files[0].Content, pkt) {
			t.Fatalf("package: %+v", pkg)
		}
	})
}

// TestAssembleFraudulentCE3 is a Visa 10.4 dispute: eligible for CE 3.0
// when the facts put the same IP and device on two prior charges 120–365
// days old, not eligible without them.
func TestAssembleFraudulentCE3(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		for _, withFacts := range []bool{true, false} {
			t.Run(fmt.Sprint("facts=", withFacts), func(t *testing.T) {
				b := newBench(t, d)
				ctx := context.Background()
				start := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
				c, dp, ch := b.chargeback(202+uint64(len(fmt.Sprint(withFacts))), start, stripetest.ChargebackOptions{Brand: "visa", Reason: "fraudulent", Code: "10.4", Renewals: 7})
				charges, err := b.store.ChargesByCustomer(ctx, ch.CustomerID)
				if err != nil {
					t.Fatal(err)
				}
				if withFacts {
					for _, pc := range charges {
						b.facts.add(fact(ch.CustomerID, disputes.FactLogin, pc.Created.Add(-10*time.Minute), ip("203.0.113.50"), device("device-abcdef-123456"), account("acct_9")))
					}
					b.facts.add(fact(ch.CustomerID, disputes.FactUsage, ch.Created.Add(5*24*time.Hour), ip("203.0.113.50"), device("device-abcdef-123456")))
				}
				doc, err := b.wb.Evidence(ctx, c.ID)
				if err != nil {
					t.Fatal(err)
				}
				if doc.CE3 == nil || !doc.CE3.Applies {
					t.Fatalf("ce3: %+v", doc.CE3)
				}
				if doc.CE3.Eligible != withFacts {
					t.Fatalf("eligible %v: %s (missing %v) priors %+v disputed %+v", doc.CE3.Eligible, doc.CE3.Summary, doc.CE3.Missing, doc.CE3.Priors, doc.CE3.Disputed)
				}
				if withFacts && len(doc.CE3.Selected) != 2 {
					t.Fatalf("selected %v", doc.CE3.Selected)
				}
				if !withFacts && len(doc.CE3.Missing) == 0 {
					t.Fatal("no missing identifiers said")
				}
				doc, err = b.wb.Assemble(ctx, c.ID, "ana", disputes.AssembleOptions{})
				if err != nil {
					t.Fatal(err)
				}
				f := doc.Draft.Fields
				if withFacts && (f["customer_purchase_ip"] != "203.0.113.50" || !strings.Contains(f["access_activity_log"], "device-abcdef-123456")) {
					t.Fatalf("fraud fields: %v", f)
				}
				if !strings.Contains(f["uncategorized_text"], "earlier charges") {
					t.Errorf("the letter does not cite prior undisputed payments:\n%s", f["uncategorized_text"])
				}
				pkt, _ := b.wb.Packet(ctx, c.ID)
				pages := pdfText(t, pkt)
				if !strings.Contains(pages[0], dp.ID) || !strings.Contains(pages[0], ch.ID) {
					t.Error("letter lacks the identifiers")
				}
			})
		}
	})
}

func code(err error) string {
	if e, ok := errs.As(err); ok {
		return e.Code
	}
	return fmt.Sprint(err)
}

// TestPatchLimitsReassembleSubmitted covers the analyst's edits: limit
// edges, links, masking, re-assembly keeping edits, and 409 once submitted.
func TestPatchLimitsReassembleSubmitted(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := newBench(t, d)
		ctx := context.Background()
		c, _, _ := b.chargeback(303, time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC), stripetest.ChargebackOptions{Brand: "mastercard", Reason: "credit_not_processed", Code: "4860", Renewals: 1})
		if _, err := b.wb.Patch(ctx, c.ID, map[string]string{"uncategorized_text": "x"}, "ana"); code(err) != disputes.CodeNoDraft {
			t.Fatalf("patch before assembly: %v", err)
		}
		if _, err := b.wb.Assemble(ctx, c.ID, "ana", disputes.AssembleOptions{}); err != nil {
			t.Fatal(err)
		}
		long := strings.Repeat("a", disputes.MaxLongTextChars)
		doc, err := b.wb.Patch(ctx, c.ID, map[string]string{"uncategorized_text": long}, "ana")
		if err != nil || doc.Draft.Version != 2 {
			t.Fatalf("exactly 20,000: %v", err)
		}
		_, err = b.wb.Patch(ctx, c.ID, map[string]string{"uncategorized_text": long + "a"}, "ana")
		if code(err) != disputes.CodeFieldTooLong || errs.KindOf(err) != errs.EUNPROCESSABLE {
			t.Fatalf("20,001: %v", err)
		}
		if e, _ := errs.As(err); e.Details["field"] != "uncategorized_text" {
			t.Fatalf("details: %v", e.Details)
		}
		for in, want := range map[string]string{
			"see https://example.com/terms":   disputes.CodeLink,
			"see http://example.com":          disputes.CodeLink,
			"see www.example.com for details": disputes.CodeLink,
		} {
			if _, err := b.wb.Patch(ctx, c.ID, map[string]string{"refund_refusal_explanation": in}, "ana"); code(err) != want {
				t.Errorf("%q: %v", in, err)
			}
		}
		if _, err := b.wb.Patch(ctx, c.ID, map[string]string{"favourite_colour": "x"}, "ana"); code(err) != disputes.CodeUnknownField {
			t.Errorf("unknown field: %v", err)
		}
		if _, err := b.wb.Patch(ctx, c.ID, map[string]string{"uncategorized_file": "file_123"}, "ana"); code(err) != disputes.CodeFileField {
			t.Errorf("file field: %v", err)
		}

		// Total: clear every text field, then fill long ones to 150,000 exactly.
		clear := map[string]string{}
		for _, f := range disputes.Fields() {
			if f.Kind() == disputes.FieldKindText {
				clear[string(f)] = ""
			}
		}
		if _, err := b.wb.Patch(ctx, c.ID, clear, "ana"); err != nil {
			t.Fatal(err)
		}
		longFields := []string{"access_activity_log", "cancellation_policy_disclosure", "cancellation_rebuttal", "duplicate_charge_explanation",
			"product_description", "refund_policy_disclosure", "refund_refusal_explanation"}
		fill := map[string]string{}
		for _, f := range longFields {
			fill[f] = long
		}
		fill["uncategorized_text"] = strings.Repeat("b", disputes.MaxTotalChars-len(longFields)*disputes.MaxLongTextChars)
		if _, err := b.wb.Patch(ctx, c.ID, fill, "ana"); err != nil {
			t.Fatalf("exactly 150,000: %v", err)
		}
		if _, err := b.wb.Package(ctx, d.Gorm, c.ID); err != nil {
			t.Fatalf("package at 150,000: %v", err)
		}
		if _, err := b.wb.Patch(ctx, c.ID, map[string]string{"uncategorized_text": fill["uncategorized_text"] + "b"}, "ana"); code(err) != disputes.CodeTotalTooLong {
			t.Fatalf("150,001: %v", err)
		}

		// Masking, and re-assembly keeping the analyst's edit.
		doc, err = b.wb.Patch(ctx, c.ID, map[string]string{"uncategorized_text": "Analyst's letter. Card 4242 4242 4242 4242."}, "ana")
		if err != nil {
			t.Fatal(err)
		}
		if got := doc.Draft.Fields["uncategorized_text"]; strings.Contains(got, "4242 4242 4242 4242") || !strings.Contains(got, "4242") {
			t.Fatalf("not masked: %q", got)
		}
		v := doc.Draft.Version
		doc, err = b.wb.Assemble(ctx, c.ID, "ana", disputes.AssembleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(doc.Draft.Fields["uncategorized_text"], "Analyst's letter.") || !slices.Contains(doc.Draft.KeptEdits, "uncategorized_text") || doc.Draft.Version != v+1 {
			t.Fatalf("re-assembly lost the edit: %q kept %v", doc.Draft.Fields["uncategorized_text"], doc.Draft.KeptEdits)
		}
		doc, err = b.wb.Assemble(ctx, c.ID, "ana", disputes.AssembleOptions{Overwrite: true})
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(doc.Draft.Fields["uncategorized_text"], "Analyst's letter.") || len(doc.Draft.EditedFields) != 0 {
			t.Fatalf("overwrite kept the edit")
		}

		// Staged, then submitted: nothing changes any more.
		pkg, err := b.wb.Package(ctx, d.Gorm, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Transact(ctx, func(tx *gorm.DB) error {
			return b.wb.Sent(ctx, tx, c.ID, pkg.Version, false, "act_stage", map[string]string{"uncategorized_file": "file_1"})
		}); err != nil {
			t.Fatal(err)
		}
		if err := d.Transact(ctx, func(tx *gorm.DB) error {
			return b.wb.Sent(ctx, tx, c.ID, pkg.Version, true, "act_submit", map[string]string{"uncategorized_file": "file_2"})
		}); err != nil {
			t.Fatal(err)
		}
		if err := b.wb.Sent(ctx, d.Gorm, c.ID, pkg.Version, true, "act_submit", nil); err != nil {
			t.Fatalf("Sent again for the same action: %v", err)
		}
		if err := b.wb.Sent(ctx, d.Gorm, c.ID, pkg.Version, true, "act_other", nil); errs.KindOf(err) != errs.ECONFLICT {
			t.Fatalf("Sent by another action: %v", err)
		}
		if _, err := b.wb.Assemble(ctx, c.ID, "ana", disputes.AssembleOptions{}); code(err) != disputes.CodeSubmitted || errs.KindOf(err) != errs.ECONFLICT {
			t.Fatalf("assemble after submission: %v", err)
		}
		if _, err := b.wb.Patch(ctx, c.ID, map[string]string{"uncategorized_text": "late"}, "ana"); code(err) != disputes.CodeSubmitted {
			t.Fatalf("patch after submission: %v", err)
		}
		doc, err = b.wb.Evidence(ctx, c.ID)
		if err != nil || doc.Draft.Status != disputes.DraftStatusSubmitted || doc.Draft.SentActionID != "act_submit" || doc.Draft.FileIDs["uncategorized_file"] != "file_2" {
			t.Fatalf("draft after submission: %+v %v", doc.Draft, err)
		}
	})
}

// TestAssembleDuplicateAndCreditNotProcessed: the reason-specific fields
// are filled for the disputes that call for them, and only those.
func TestAssembleDuplicateAndCreditNotProcessed(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := newBench(t, d)
		ctx := context.Background()
		c, dp, ch := b.chargeback(606, time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC), stripetest.ChargebackOptions{Brand: "visa", Reason: "duplicate", Code: "12.6.1", Renewals: 1})
		doc, err := b.wb.Assemble(ctx, c.ID, "ana", disputes.AssembleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f := doc.Draft.Fields
		dup := f["duplicate_charge_id"]
		if dup == "" || dup == ch.ID || !strings.Contains(f["duplicate_charge_explanation"], dup) || !strings.Contains(f["duplicate_charge_explanation"], "invoice") {
			t.Fatalf("duplicate fields: id %q explanation %q", dup, f["duplicate_charge_explanation"])
		}
		if f["cancellation_rebuttal"] != "" || f["refund_refusal_explanation"] != "" {
			t.Fatalf("fields of other reasons filled: %v", f)
		}
		if !strings.Contains(f["uncategorized_text"], dp.ID) {
			t.Fatal("letter lacks the dispute id")
		}

		c2, _, _ := b.chargeback(707, time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC), stripetest.ChargebackOptions{Brand: "visa", Reason: "credit_not_processed", Code: "13.6", Renewals: 1})
		doc, err = b.wb.Assemble(ctx, c2.ID, "ana", disputes.AssembleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f = doc.Draft.Fields
		if !strings.Contains(f["refund_refusal_explanation"], "No refund is owed") || f["duplicate_charge_id"] != "" || f["cancellation_rebuttal"] != "" {
			t.Fatalf("credit_not_processed fields: %v", f)
		}
	})
}

// applyAll posts every event of a story through the mirror and cases.
func (b *bench) applyAll(evs []stripetest.Event) {
	b.t.Helper()
	ctx := context.Background()
	for _, ev := range evs {
		b.clk.Set(ev.Created.Add(time.Second))
		err := b.d.Transact(ctx, func(tx *gorm.DB) error {
			ch, err := b.store.In(tx).Apply(ctx, billing.ProviderEvent{ID: ev.ID, Type: ev.Type, Created: ev.Created, APIVersion: "2023-10-16", Payload: ev.Payload})
			if errors.Is(err, billing.ErrNotBillingEvent) {
				return nil
			}
			if err != nil {
				return err
			}
			return b.cases.OnBillingChange(ctx, tx, ch)
		})
		if err != nil {
			b.t.Fatalf("%s %s: %v", ev.Type, ev.ID, err)
		}
	}
}

// TestRecommendationWinRate: the win rate is the decided disputes of the
// reason and brand in the mirror with the policy's Beta prior, and the
// expected values follow the fees.
func TestRecommendationWinRate(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := newBench(t, d)
		ctx := context.Background()
		start := time.Date(2025, 11, 1, 9, 0, 0, 0, time.UTC)
		g := stripetest.New(808, stripetest.WithClock(b.clk.Now))
		b.applyAll(g.Chargeback(start, stripetest.ChargebackOptions{Brand: "visa", Reason: "subscription_canceled", Code: "13.2", Won: true}))
		b.applyAll(g.Chargeback(start, stripetest.ChargebackOptions{Brand: "visa", Reason: "subscription_canceled", Code: "13.2", Won: false}))
		b.applyAll(g.Chargeback(start, stripetest.ChargebackOptions{Brand: "mastercard", Reason: "subscription_canceled", Code: "4841", Won: true}))
		c, dp, _ := b.chargeback(809, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), stripetest.ChargebackOptions{Brand: "visa", Reason: "subscription_canceled", Code: "13.2"})
		doc, err := b.wb.Evidence(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := doc.Recommendation
		p := disputes.DefaultPolicy()
		want := (1 + p.PriorWinRate*p.PriorWeight) / (2 + p.PriorWeight)
		if r.Won != 1 || r.Lost != 1 || r.WinRate < want-0.001 || r.WinRate > want+0.001 {
			t.Fatalf("win rate: %+v (want %.3f)", r, want)
		}
		if r.ExpectedAccept != -(dp.Amount+p.Fees.DisputeFee) || r.ExpectedFight > -p.Fees.DisputeFee || (r.Action == "fight") != (r.ExpectedFight > r.ExpectedAccept) {
			t.Fatalf("expected values: %+v", r)
		}
	})
}
