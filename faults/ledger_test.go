package faults

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/billing"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// snapshot is what a run left in the database, read back for the ledger.
type snapshot struct {
	inbox    map[string]inboxEntry // event id → its inbox row(s)
	billing  map[string]int        // event id → billing timeline rows
	caseTL   map[string]int        // event id → case timeline rows
	pairDups int                   // case timeline rows beyond the first per (case, event, type)
	mirror   map[string]string     // "table/object id" → event that last wrote it
	cases    map[string]caseInfo   // "kind/subject" → its cases
}

type caseInfo struct {
	n     int    // cases of this kind on this object
	state string // the newest one's state
}

type inboxEntry struct {
	rows     int
	status   string
	attempts int
}

var mirrorTables = []string{"billing_customers", "billing_subscriptions", "billing_invoices", "billing_charges",
	"billing_refunds", "billing_disputes", "billing_fraud_warnings"}

// readSnapshot reads the inbox, the timelines, the mirror and the cases.
func readSnapshot(ctx context.Context, d *gorm.DB) (*snapshot, error) {
	s := &snapshot{inbox: map[string]inboxEntry{}, billing: map[string]int{}, caseTL: map[string]int{},
		mirror: map[string]string{}, cases: map[string]caseInfo{}}
	g := d.WithContext(ctx)
	scan := func(query string, each func(cols []any) error, dest ...any) error {
		rows, err := g.Raw(query).Rows()
		if err != nil {
			return fmt.Errorf("%s: %w", query, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			if err := each(dest); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	var id, status, key, val string
	var n, attempts int
	if err := scan("SELECT event_id, status, attempts FROM webhook_events", func([]any) error {
		e := s.inbox[id]
		e.rows++
		e.status, e.attempts = status, attempts
		s.inbox[id] = e
		return nil
	}, &id, &status, &attempts); err != nil {
		return nil, err
	}
	if err := scan("SELECT event_id, COUNT(*) FROM billing_timeline GROUP BY event_id", func([]any) error {
		s.billing[id] = n
		return nil
	}, &id, &n); err != nil {
		return nil, err
	}
	if err := scan("SELECT event_id, COUNT(*) FROM case_timeline WHERE event_id IS NOT NULL GROUP BY event_id", func([]any) error {
		s.caseTL[id] = n
		return nil
	}, &id, &n); err != nil {
		return nil, err
	}
	if err := scan(`SELECT COALESCE(SUM(c - 1), 0) FROM (SELECT COUNT(*) AS c FROM case_timeline
		WHERE event_id IS NOT NULL GROUP BY case_id, event_id, type) x`, func([]any) error {
		s.pairDups = n
		return nil
	}, &n); err != nil {
		return nil, err
	}
	for _, table := range mirrorTables {
		if err := scan("SELECT id, event_id FROM "+table, func([]any) error {
			s.mirror[table+"/"+key] = val
			return nil
		}, &key, &val); err != nil {
			return nil, err
		}
	}
	if err := scan(`SELECT kind || '/' || COALESCE(subject_id, id), state FROM cases ORDER BY created_at, id`, func([]any) error {
		c := s.cases[key]
		c.n++
		c.state = val
		s.cases[key] = c
		return nil
	}, &key, &val); err != nil {
		return nil, err
	}
	return s, nil
}

// ledgerRow is one line of the printed ledger.
type ledgerRow struct {
	Fault      string
	Sent       int // distinct events sent
	Deliveries int // deliveries planned (duplicates included)
	Acked      int // distinct events acknowledged with a 200
	Stored     int // acknowledged events in the inbox exactly once
	Applied    int // acknowledged events processed (or ignored) exactly once
	Effects    int // billing and case timeline entries of the acknowledged events
	Duplicated int // effects (or rows) beyond exactly once
	Lost       int // acknowledged events, or effects of them, missing
	Moved      int // events whose case entry went to a same-second sibling (not an imbalance)
	Actions    int // actions requested (provider faults)
	ProvDouble int // actions executed more than once at the provider
	Retried    int // deliveries that were not acknowledged at first and were sent again
	Reclaimed  int // events claimed by a worker more than once (a lease lost with its process, a failed attempt)
	Elapsed    time.Duration
	Problems   []string
	// Expected marks a sabotaged run, whose imbalance is the point.
	Expected bool
}

func (r ledgerRow) balanced() bool {
	return r.Duplicated == 0 && r.Lost == 0 && r.ProvDouble == 0 && len(r.Problems) == 0
}

// ledgerInput is what a run sent and what the ledger compares against.
type ledgerInput struct {
	fault      string
	events     []stripetest.Event // the distinct events sent
	deliveries int
	acked      map[string]bool
	// ref is the fault-free run of the same events; nil for that run.
	ref *snapshot
	// sameOrder: the events went in their natural order, so their case
	// effects must equal ref's event by event. Reordered runs may open
	// different cases (a payment failure that arrives after its invoice was
	// paid opens none) and are held to no double effect instead.
	sameOrder bool
}

const maxProblems = 12

// maxAttempts is RECOURSE_WORKER_MAX_ATTEMPTS as the suite sets it.
const maxAttempts = 12

// balance builds the ledger row for one run from what it left in s.
func balance(in ledgerInput, s *snapshot) ledgerRow {
	r := ledgerRow{Fault: in.fault, Sent: len(in.events), Deliveries: in.deliveries, Acked: len(in.acked)}
	problem := func(format string, args ...any) {
		if len(r.Problems) < maxProblems {
			r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		} else if len(r.Problems) == maxProblems {
			r.Problems = append(r.Problems, "…")
		}
	}
	sent := map[string]bool{}
	for _, ev := range in.events {
		sent[ev.ID] = true
		if !in.acked[ev.ID] {
			problem("%s never acknowledged", ev.ID)
		}
	}
	for _, ev := range in.events {
		if !in.acked[ev.ID] {
			continue
		}
		e := s.inbox[ev.ID]
		switch {
		case e.rows == 0:
			r.Lost++
			problem("%s acknowledged but not in the inbox", ev.ID)
			continue
		case e.rows > 1:
			r.Duplicated += e.rows - 1
			problem("%s stored %d times", ev.ID, e.rows)
		}
		r.Stored++
		if e.attempts > 1 {
			r.Reclaimed++
		}
		if e.attempts < 1 || e.attempts > maxAttempts {
			problem("%s was claimed %d times (1 to %d is sane)", ev.ID, e.attempts, maxAttempts)
		}
		_, handled := billing.KindOfEventType(ev.Type)
		want := "ignored"
		if handled {
			want = "processed"
		}
		if e.status != want {
			r.Lost++
			problem("%s (%s) is %s after %d attempts, want %s", ev.ID, ev.Type, e.status, e.attempts, want)
			continue
		}
		r.Applied++
		wantBilling := 0
		if handled {
			wantBilling = 1
		}
		got := s.billing[ev.ID]
		r.Effects += got + s.caseTL[ev.ID]
		switch {
		case got < wantBilling:
			r.Lost += wantBilling - got
			problem("%s (%s): no billing timeline entry", ev.ID, ev.Type)
		case got > wantBilling:
			r.Duplicated += got - wantBilling
			problem("%s (%s): %d billing timeline entries, want %d", ev.ID, ev.Type, got, wantBilling)
		}
		if in.ref != nil && in.sameOrder && s.caseTL[ev.ID] != in.ref.caseTL[ev.ID] {
			// Not an imbalance: of two events Stripe sends in the same
			// second (invoice.paid and invoice.payment_succeeded), the one
			// applied first moves the case and the other finds it moved.
			r.Moved++
		}
	}
	for id, e := range s.inbox {
		if !sent[id] {
			r.Duplicated += e.rows
			problem("%s in the inbox but never sent", id)
		}
	}
	if s.pairDups > 0 {
		r.Duplicated += s.pairDups
		problem("%d case timeline entries repeat an event on the same case", s.pairDups)
	}
	if in.ref != nil {
		for k, ev := range in.ref.mirror {
			got, ok := s.mirror[k]
			switch {
			case !ok:
				r.Lost++
				problem("mirror lacks %s", k)
			case got != ev:
				r.Lost++
				problem("mirror %s last written by %s, the fault-free run by %s", k, got, ev)
			}
		}
		for k := range s.mirror {
			if _, ok := in.ref.mirror[k]; !ok {
				r.Duplicated++
				problem("mirror has %s, the fault-free run does not", k)
			}
		}
		if in.sameOrder {
			for k, want := range in.ref.cases {
				got := s.cases[k]
				switch {
				case got.n < want.n:
					r.Lost += want.n - got.n
					problem("%d %s cases, the fault-free run has %d (%s)", got.n, k, want.n, want.state)
				case got.n > want.n:
					r.Duplicated += got.n - want.n
					problem("%d %s cases, the fault-free run has %d", got.n, k, want.n)
				case got.state != want.state:
					problem("case %s is %s, the fault-free run's is %s", k, got.state, want.state)
				}
			}
			for k, got := range s.cases {
				if _, ok := in.ref.cases[k]; !ok {
					r.Duplicated += got.n
					problem("case %s opened, the fault-free run has none", k)
				}
			}
		}
	}
	return r
}

// The ledger of the whole suite, printed by TestMain.
var (
	ledgerMu   sync.Mutex
	ledgerRows []ledgerRow
)

// record adds r to the printed ledger and fails t when it does not balance.
func record(t *testing.T, r ledgerRow) {
	t.Helper()
	ledgerMu.Lock()
	ledgerRows = append(ledgerRows, r)
	ledgerMu.Unlock()
	t.Logf("ledger: %s", r.line())
	if !r.balanced() {
		t.Errorf("ledger of %q does not balance:\n  %s", r.Fault, strings.Join(r.Problems, "\n  "))
	}
}

func (r ledgerRow) verdict() string {
	switch {
	case r.balanced():
		return "balanced"
	case r.Expected:
		return "IMBALANCE (caught, as it must be)"
	}
	return "IMBALANCE"
}

func (r ledgerRow) line() string {
	return fmt.Sprintf("sent %d, deliveries %d, acked %d, stored %d, applied %d, effects %d (%d case entries on a same-second sibling), duplicated %d, lost %d, actions %d, provider doubles %d: %s",
		r.Sent, r.Deliveries, r.Acked, r.Stored, r.Applied, r.Effects, r.Moved, r.Duplicated, r.Lost, r.Actions, r.ProvDouble, r.verdict())
}

// printLedger writes the ledger table.
func printLedger(w io.Writer) {
	ledgerMu.Lock()
	rows := append([]ledgerRow(nil), ledgerRows...)
	ledgerMu.Unlock()
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nLEDGER")
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault\tsent\tdeliveries\tretried\tacked\tstored\tapplied\treclaimed\teffects\tduplicated\tlost\tactions\tprovider doubles\ttime\tverdict\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", r.Fault, r.Sent, r.Deliveries, r.Retried, r.Acked,
			r.Stored, r.Applied, r.Reclaimed, r.Effects, r.Duplicated, r.Lost, r.Actions, r.ProvDouble, r.Elapsed.Round(100*time.Millisecond), r.verdict())
	}
	_ = tw.Flush()
}
