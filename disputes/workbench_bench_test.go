package disputes_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// largeCustomer gives the disputed customer 10,000 facts (logins, usage,
// notices, communications, consents, deliveries) and the case 200 timeline
// entries, and returns the case id.
func largeCustomer(tb testing.TB, b *bench) string {
	tb.Helper()
	ctx := context.Background()
	c, _, ch := b.chargeback(404, time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC),
		stripetest.ChargebackOptions{Brand: "mastercard", Reason: "subscription_canceled", Code: "4841", Renewals: 3})
	cust := ch.CustomerID
	for _, key := range []string{"terms", "cancellation", "refund"} {
		b.facts.policy(disputes.PolicyDocument{Key: key, Version: "7", Title: "Policy " + key,
			Body: longPolicy(), EffectiveAt: ch.Created.AddDate(-1, 0, 0)})
	}
	longBody := strings.Repeat("I would like to understand my invoice and the plan I am on. ", 12)
	// Spread over the ~10 months before now, the charge among them.
	from := b.clk.Now().AddDate(0, -10, 0)
	step := b.clk.Now().Sub(from) / 10_000
	facts := make([]disputes.Fact, 0, 10_000)
	for i := range 10_000 {
		at := from.Add(time.Duration(i) * step)
		var f disputes.Fact
		switch {
		case i%200 == 0:
			f = fact(cust, disputes.FactConsent, at, ip("203.0.113.9"), policy([]string{"terms", "cancellation", "refund"}[i/200%3], "7"), data(`{"flow":"checkout"}`))
		case i%50 == 1:
			f = fact(cust, disputes.FactCommunication, at, data(`{"direction":"inbound","subject":"Question","body":"`+longBody+`"}`))
		case i%20 == 2:
			f = fact(cust, disputes.FactNotice, at, template("renewal_reminder"))
		case i%40 == 3:
			f = fact(cust, disputes.FactDelivery, at, data(`{"what":"report export","size":"2 MB"}`))
		case i%2 == 0:
			f = fact(cust, disputes.FactUsage, at, ip(fmt.Sprintf("203.0.113.%d", i%7)), device("device-large-000001"), data(`{"feature":"editor"}`))
		default:
			f = fact(cust, disputes.FactLogin, at, ip(fmt.Sprintf("203.0.113.%d", i%7)), device("device-large-000001"), account("acct_large"))
		}
		facts = append(facts, f)
	}
	b.facts.add(facts...)
	err := b.d.Transact(ctx, func(tx *gorm.DB) error {
		for i := range 200 {
			if err := b.cases.Record(ctx, tx, c.ID, "ana", "note", fmt.Sprintf("Looked at the account, note %d", i), ""); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c.ID
}

func longPolicy() string {
	s := ""
	for i := range 60 {
		s += fmt.Sprintf("Clause %d. You may cancel at any time before the renewal date; cancellations take effect at the end of the paid period. ", i+1)
	}
	return s
}

// TestAssembleLargeCustomer keeps a customer with 10,000 facts within every
// limit (Mastercard: fewer than 19 pages).
func TestAssembleLargeCustomer(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		b := newBench(t, d)
		caseID := largeCustomer(t, b)
		ctx := context.Background()
		start := time.Now()
		doc, err := b.wb.Assemble(ctx, caseID, "ana", disputes.AssembleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: assembled in %s: %d pages, %d bytes, %d characters", d.Dialect, time.Since(start), doc.Draft.PacketPages, doc.Draft.PacketBytes, doc.Draft.TotalChars)
		if doc.Draft.PacketPages >= disputes.MaxPagesMastercard {
			t.Fatalf("%d pages for a Mastercard dispute", doc.Draft.PacketPages)
		}
		if _, err := b.wb.Package(ctx, d.Gorm, caseID); err != nil {
			t.Fatalf("package: %v", err)
		}
	})
}

// BenchmarkAssemble assembles the evidence (fields and packet PDF) of a
// customer with 10,000 facts and 200 timeline entries. Target: < 300 ms.
func BenchmarkAssemble(bm *testing.B) {
	for _, dialect := range dbtest.Dialects() {
		bm.Run(string(dialect), func(bm *testing.B) {
			b := newBench(bm, dbtest.Open(bm, dialect))
			caseID := largeCustomer(bm, b)
			ctx := context.Background()
			bm.ResetTimer()
			for bm.Loop() {
				if _, err := b.wb.Assemble(ctx, caseID, "ana", disputes.AssembleOptions{}); err != nil {
					bm.Fatal(err)
				}
			}
		})
	}
}
