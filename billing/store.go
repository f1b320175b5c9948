package billing

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
)

// DefaultMaxPaymentAttempts is how many payment attempts a renewal is
// assumed to get when summaries say "attempt 2 of 4". The provider's retry
// schedule is an account setting that no payload carries.
const DefaultMaxPaymentAttempts = 4

// Store is the billing mirror: the provider's objects as last seen, each
// customer's billing timeline, and the rules that keep both correct when
// events arrive late, twice or out of order. It is safe for concurrent use;
// on PostgreSQL many processes may apply events at once.
type Store struct {
	db          *db.DB
	tx          *gorm.DB // set by In: every statement runs in this transaction
	clock       clock.Clock
	maxAttempts int
	// fetcher, when set, supplies the charge behind a dispute, refund or
	// early fraud warning the mirror has never seen; each call is bounded
	// by fetchTimeout.
	fetcher      Fetcher
	fetchTimeout time.Duration
	// openCases, when set, counts each search hit's open cases.
	openCases OpenCaseCounter
}

// WithFetcher lets the store ask the provider for a charge it has never
// mirrored, to link a dispute, refund or early fraud warning on it to its
// customer (and card). Each lookup runs inside the event's transaction,
// bounded by timeout (the provider client's own timeout applies too);
// when it fails the event still applies and Change.ChargeLookup says why.
func WithFetcher(f Fetcher, timeout time.Duration) StoreOption {
	return func(s *Store) {
		s.fetcher = f
		if timeout > 0 {
			s.fetchTimeout = timeout
		}
	}
}

// StoreOption tunes a Store.
type StoreOption func(*Store)

// WithMaxPaymentAttempts sets the "of N" in payment-failure summaries
// (default DefaultMaxPaymentAttempts). Values below 1 are ignored.
func WithMaxPaymentAttempts(n int) StoreOption {
	return func(s *Store) {
		if n >= 1 {
			s.maxAttempts = n
		}
	}
}

// NewStore returns the mirror over d, taking every stored time from c.
func NewStore(d *db.DB, c clock.Clock, opts ...StoreOption) *Store {
	s := &Store{db: d, clock: c, maxAttempts: DefaultMaxPaymentAttempts, fetchTimeout: 30 * time.Second}
	for _, o := range opts {
		o(s)
	}
	return s
}

// In returns the same store bound to tx (the webhook worker's per-event
// transaction): everything it reads and writes goes through tx, so the
// mirror update commits or rolls back with the event.
func (s *Store) In(tx *gorm.DB) *Store {
	cp := *s
	cp.tx = tx
	return &cp
}

// conn is the handle statements run on.
func (s *Store) conn(ctx context.Context) *gorm.DB {
	if s.tx != nil {
		return s.tx.WithContext(ctx)
	}
	return s.db.WithContext(ctx)
}

// --- rows -------------------------------------------------------------------

// Rows wrap the domain types with bookkeeping columns. The domain types'
// field names map to the columns of migrations/*/0002_billing.sql.

type customerRow struct {
	Customer
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"autoUpdateTime:false"`
}

func (customerRow) TableName() string { return "billing_customers" }

// subscriptionRow's has_default_payment_method column is the subscription's
// own default_payment_method/default_source; readers OR in the customer's.
type subscriptionRow struct {
	Subscription
	PrevStatus string    // previous_attributes.status of the event that wrote the row
	CreatedAt  time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt  time.Time `gorm:"autoUpdateTime:false"`
}

func (subscriptionRow) TableName() string { return "billing_subscriptions" }

type invoiceRow struct {
	Invoice
	PrevStatus string    // previous_attributes.status of the event that wrote the row
	CreatedAt  time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt  time.Time `gorm:"autoUpdateTime:false"`
}

func (invoiceRow) TableName() string { return "billing_invoices" }

type chargeRow struct {
	Charge
	PrevStatus string    // previous_attributes.status of the event that wrote the row
	CreatedAt  time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt  time.Time `gorm:"autoUpdateTime:false"`
}

func (chargeRow) TableName() string { return "billing_charges" }

type refundRow struct {
	Refund
	PrevStatus string    // previous_attributes.status of the event that wrote the row
	CreatedAt  time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt  time.Time `gorm:"autoUpdateTime:false"`
}

func (refundRow) TableName() string { return "billing_refunds" }

type disputeRow struct {
	Dispute
	PrevStatus string    // previous_attributes.status of the event that wrote the row
	CreatedAt  time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt  time.Time `gorm:"autoUpdateTime:false"`
}

func (disputeRow) TableName() string { return "billing_disputes" }

type fraudWarningRow struct {
	FraudWarning
	CreatedAt time.Time `gorm:"autoCreateTime:false"`
	UpdatedAt time.Time `gorm:"autoUpdateTime:false"`
}

func (fraudWarningRow) TableName() string { return "billing_fraud_warnings" }

// mirrorRow is what upsert needs of a row.
type mirrorRow[R any] interface {
	*R
	key() string
	stamps() (created, updated *time.Time)
}

func (r *customerRow) key() string                   { return r.ID }
func (r *subscriptionRow) key() string               { return r.ID }
func (r *invoiceRow) key() string                    { return r.ID }
func (r *chargeRow) key() string                     { return r.ID }
func (r *refundRow) key() string                     { return r.ID }
func (r *disputeRow) key() string                    { return r.ID }
func (r *fraudWarningRow) key() string               { return r.ID }
func (r *customerRow) stamps() (c, u *time.Time)     { return &r.CreatedAt, &r.UpdatedAt }
func (r *subscriptionRow) stamps() (c, u *time.Time) { return &r.CreatedAt, &r.UpdatedAt }
func (r *invoiceRow) stamps() (c, u *time.Time)      { return &r.CreatedAt, &r.UpdatedAt }
func (r *chargeRow) stamps() (c, u *time.Time)       { return &r.CreatedAt, &r.UpdatedAt }
func (r *refundRow) stamps() (c, u *time.Time)       { return &r.CreatedAt, &r.UpdatedAt }
func (r *disputeRow) stamps() (c, u *time.Time)      { return &r.CreatedAt, &r.UpdatedAt }
func (r *fraudWarningRow) stamps() (c, u *time.Time) { return &r.CreatedAt, &r.UpdatedAt }

// --- ordering ---------------------------------------------------------------

// verdict is how an incoming state relates to the stored one.
type verdict int

const (
	verdictStale verdict = iota - 1 // the stored state is newer
	verdictSame                     // the same event wrote the stored state
	verdictNewer                    // the incoming state replaces the stored one
)

// ordering is what decides between two states of one object: the version
// (event created time and id), the object's own progress fields (rank:
// compared left to right, higher is later), its status, and for the incoming
// state the status it came from (previous_attributes.status, "" if none).
type ordering struct {
	version    Version
	rank       []int64
	status     string
	prevStatus string
}

// compareStates decides whether in replaces stored. The rules, in order:
//
//  1. The same event id: nothing to do (a redelivery).
//  2. A later event created time wins.
//  3. On equal created times, a state whose event's previous_attributes name
//     the other state's status as the one it left is later, unless the
//     other names it back (a cycle such as active → past_due → active
//     within one second tells nothing).
//  4. Then the object's rank (later lifecycle status, more attempts, more
//     refunded, more evidence submissions, …) is compared, higher wins.
//  5. Then the greater event id wins. Provider event ids are not promised
//     to be ordered, but this makes the outcome the same whatever order the
//     events arrive in, so replicas converge.
func compareStates(in, stored ordering) verdict {
	if in.version.EventID == stored.version.EventID {
		return verdictSame
	}
	if c := in.version.EventCreated.Compare(stored.version.EventCreated); c != 0 {
		return verdictOf(c)
	}
	inFollows := in.prevStatus != "" && in.prevStatus == stored.status && in.status != stored.status
	storedFollows := stored.prevStatus != "" && stored.prevStatus == in.status && in.status != stored.status
	switch {
	case inFollows && !storedFollows:
		return verdictNewer
	case storedFollows && !inFollows:
		return verdictStale
	}
	for i := 0; i < len(in.rank) && i < len(stored.rank); i++ {
		if in.rank[i] != stored.rank[i] {
			if in.rank[i] > stored.rank[i] {
				return verdictNewer
			}
			return verdictStale
		}
	}
	if in.version.EventID > stored.version.EventID {
		return verdictNewer
	}
	return verdictStale
}

func verdictOf(c int) verdict {
	if c > 0 {
		return verdictNewer
	}
	return verdictStale
}

// statusRank orders statuses along their lifecycle; unknown statuses rank
// lowest so a known state wins a tie against one we do not understand.
func statusRank(order map[string]int64, status string) int64 {
	if r, ok := order[status]; ok {
		return r
	}
	return -1
}

func boolRank(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func timeRank(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.Unix()
}

var (
	subscriptionOrder = map[string]int64{"incomplete": 0, "trialing": 1, "active": 2, "past_due": 3, "paused": 4, "unpaid": 4, "canceled": 5, "incomplete_expired": 5}
	invoiceOrder      = map[string]int64{"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}
	chargeOrder       = map[string]int64{"pending": 0, "failed": 1, "succeeded": 1}
	refundOrder       = map[string]int64{"pending": 0, "requires_action": 1, "succeeded": 2, "failed": 3, "canceled": 3}
	disputeOrder      = map[string]int64{"warning_needs_response": 0, "warning_under_review": 1, "warning_closed": 2, "needs_response": 3, "under_review": 4, "won": 5, "lost": 5, "prevented": 5, "charge_refunded": 5}
)

// KnownStatus reports whether status is one Recourse knows for objects of
// kind (subscriptions, invoices, charges, refunds, disputes). Statuses are open strings: newer API versions add
// values, and callers keep what they do not know.
func KnownStatus(kind ObjectKind, status string) bool {
	var order map[string]int64
	switch kind {
	case KindSubscription:
		order = subscriptionOrder
	case KindInvoice:
		order = invoiceOrder
	case KindCharge:
		order = chargeOrder
	case KindRefund:
		order = refundOrder
	case KindDispute:
		order = disputeOrder
	default:
		return true
	}
	_, ok := order[status]
	return ok
}

// --- upsert -----------------------------------------------------------------

// upsert writes in as the new state of its object unless the stored state
// is newer. decide gets the stored row (locked on PostgreSQL) and returns
// the row to keep and the verdict. It returns the row now stored, whether
// this call created it, and the verdict.
//
// Concurrency: the stored row is read with SELECT … FOR UPDATE on
// PostgreSQL, so two transactions applying events of one object take turns
// and the second compares against what the first wrote. When there is no
// row yet, INSERT … ON CONFLICT (id) DO NOTHING lets exactly one of two
// racing inserts win; the loser (which waited for the winner's commit) goes
// round again and compares against the winner's row. SQLite has a single
// writer, so the same code is simply serialised there.
func upsert[R any, P mirrorRow[R]](ctx context.Context, s *Store, in P, decide func(stored P) (P, verdict)) (P, bool, verdict, error) {
	now := s.clock.Now().UTC()
	id := in.key()
	for attempt := 0; attempt < 3; attempt++ {
		stored := P(new(R))
		found, err := s.lockRow(ctx, stored, id)
		if err != nil {
			return nil, false, 0, err
		}
		if !found {
			c, u := in.stamps()
			*c, *u = now, now
			res := s.conn(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, DoNothing: true}).Create(in)
			if res.Error != nil {
				return nil, false, 0, fmt.Errorf("insert %s: %w", id, res.Error)
			}
			if res.RowsAffected == 1 {
				return in, true, verdictNewer, nil
			}
			continue // another transaction created it first: compare with its row
		}
		out, v := decide(stored)
		sc, su := stored.stamps()
		oc, ou := out.stamps()
		*oc, *ou = *sc, *su
		if reflect.DeepEqual(out, stored) {
			return stored, false, v, nil
		}
		*ou = now
		res := s.conn(ctx).Model(P(new(R))).Where("id = ?", id).Select("*").Omit("id", "created_at").Updates(out)
		if res.Error != nil {
			return nil, false, 0, fmt.Errorf("update %s: %w", id, res.Error)
		}
		return out, false, v, nil
	}
	return nil, false, 0, fmt.Errorf("upsert %s: row kept appearing and disappearing", id)
}

// lockRow loads the row with id into dst, locking it FOR UPDATE on
// PostgreSQL. It reports false when there is none.
func (s *Store) lockRow(ctx context.Context, dst any, id string) (bool, error) {
	q := s.db.Dialect.ForUpdate(s.conn(ctx))
	err := q.Where("id = ?", id).Take(dst).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("load %s: %w", id, err)
	}
	normalizeTimes(dst)
	return true, nil
}

// keep sets *dst to alt when *dst is empty: a field one API version omits
// does not erase what another version told us.
func keep(dst *string, alt string) {
	if *dst == "" {
		*dst = alt
	}
}

// earliest keeps the first known object created time.
func earliest(dst *time.Time, alt time.Time) {
	if dst.IsZero() || (!alt.IsZero() && alt.Before(*dst)) {
		*dst = alt
	}
}

// pickBase returns the state to keep (incoming when it is newer) and the other.
func pickBase[T any](stored, in T, v verdict) (T, T) {
	if v == verdictNewer {
		return in, stored
	}
	return stored, in
}

// --- reads ------------------------------------------------------------------

// take loads one row by id; ENOTFOUND names the kind when there is none.
func (s *Store) take(ctx context.Context, dst any, kind ObjectKind, id string) error {
	err := s.conn(ctx).Where("id = ?", id).Take(dst).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return errs.NotFound("no %s %q in the billing mirror", kindWords(kind), id)
	}
	if err != nil {
		return fmt.Errorf("load %s %s: %w", kind, id, err)
	}
	normalizeTimes(dst)
	return nil
}

func kindWords(k ObjectKind) string {
	switch k {
	case KindFraudWarning:
		return "early fraud warning"
	}
	return string(k)
}

// Customer returns the mirrored customer. ENOTFOUND when it has not been seen.
func (s *Store) Customer(ctx context.Context, id string) (Customer, error) {
	var r customerRow
	if err := s.take(ctx, &r, KindCustomer, id); err != nil {
		return Customer{}, err
	}
	return r.Customer, nil
}

// Subscription returns the mirrored subscription, HasDefaultPaymentMethod
// counting the customer's default when the customer is mirrored. ENOTFOUND
// when it has not been seen.
func (s *Store) Subscription(ctx context.Context, id string) (Subscription, error) {
	var r subscriptionRow
	if err := s.take(ctx, &r, KindSubscription, id); err != nil {
		return Subscription{}, err
	}
	subs, err := s.withCustomerPM(ctx, []Subscription{r.Subscription})
	if err != nil {
		return Subscription{}, err
	}
	return subs[0], nil
}

// Invoice returns the mirrored invoice. ENOTFOUND when it has not been seen.
func (s *Store) Invoice(ctx context.Context, id string) (Invoice, error) {
	var r invoiceRow
	if err := s.take(ctx, &r, KindInvoice, id); err != nil {
		return Invoice{}, err
	}
	invs, err := s.withFailureCodes(ctx, []Invoice{r.Invoice})
	if err != nil {
		return Invoice{}, err
	}
	return invs[0], nil
}

// Charge returns the mirrored charge. ENOTFOUND when it has not been seen.
func (s *Store) Charge(ctx context.Context, id string) (Charge, error) {
	var r chargeRow
	if err := s.take(ctx, &r, KindCharge, id); err != nil {
		return Charge{}, err
	}
	return r.Charge, nil
}

// Refund returns the mirrored refund, its customer resolved through the
// charge when the refund's own events did not name one. ENOTFOUND when it
// has not been seen.
func (s *Store) Refund(ctx context.Context, id string) (Refund, error) {
	var r refundRow
	if err := s.take(ctx, &r, KindRefund, id); err != nil {
		return Refund{}, err
	}
	if err := s.resolveCustomer(ctx, &r.CustomerID, r.ChargeID); err != nil {
		return Refund{}, err
	}
	return r.Refund, nil
}

// Dispute returns the mirrored dispute, its customer resolved through the
// charge. ENOTFOUND when it has not been seen.
func (s *Store) Dispute(ctx context.Context, id string) (Dispute, error) {
	var r disputeRow
	if err := s.take(ctx, &r, KindDispute, id); err != nil {
		return Dispute{}, err
	}
	if err := s.resolveCustomer(ctx, &r.CustomerID, r.ChargeID); err != nil {
		return Dispute{}, err
	}
	return r.Dispute, nil
}

// FraudWarning returns the mirrored early fraud warning, its customer
// resolved through the charge. ENOTFOUND when it has not been seen.
func (s *Store) FraudWarning(ctx context.Context, id string) (FraudWarning, error) {
	var r fraudWarningRow
	if err := s.take(ctx, &r, KindFraudWarning, id); err != nil {
		return FraudWarning{}, err
	}
	if err := s.resolveCustomer(ctx, &r.CustomerID, r.ChargeID); err != nil {
		return FraudWarning{}, err
	}
	return r.FraudWarning, nil
}

// SubscriptionsByCustomer returns the customer's mirrored subscriptions,
// oldest first (empty, not an error, when there are none).
func (s *Store) SubscriptionsByCustomer(ctx context.Context, customerID string) ([]Subscription, error) {
	var rows []subscriptionRow
	if err := s.conn(ctx).Where("customer_id = ?", customerID).Order("created, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list subscriptions of customer %s: %w", customerID, err)
	}
	out := make([]Subscription, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		out[i] = rows[i].Subscription
	}
	return s.withCustomerPM(ctx, out)
}

// InvoicesBySubscription returns the subscription's mirrored invoices,
// oldest first (empty when there are none).
func (s *Store) InvoicesBySubscription(ctx context.Context, subID string) ([]Invoice, error) {
	var rows []invoiceRow
	if err := s.conn(ctx).Where("subscription_id = ?", subID).Order("created, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list invoices of subscription %s: %w", subID, err)
	}
	out := make([]Invoice, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		out[i] = rows[i].Invoice
	}
	return s.withFailureCodes(ctx, out)
}

// ChargesByCustomer returns the customer's mirrored charges, oldest first
// (empty when there are none).
func (s *Store) ChargesByCustomer(ctx context.Context, customerID string) ([]Charge, error) {
	return s.charges(ctx, "customer_id", customerID)
}

// ChargesByInvoice returns the charges that paid or tried to pay an
// invoice, oldest first (empty when there are none).
func (s *Store) ChargesByInvoice(ctx context.Context, invoiceID string) ([]Charge, error) {
	return s.charges(ctx, "invoice_id", invoiceID)
}

// ChargesByPaymentIntent returns the charges of a payment intent, oldest
// first (empty when there are none).
func (s *Store) ChargesByPaymentIntent(ctx context.Context, paymentIntentID string) ([]Charge, error) {
	return s.charges(ctx, "payment_intent_id", paymentIntentID)
}

func (s *Store) charges(ctx context.Context, column, value string) ([]Charge, error) {
	var rows []chargeRow
	if err := s.conn(ctx).Where(column+" = ?", value).Order("created, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list charges by %s %s: %w", column, value, err)
	}
	out := make([]Charge, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		out[i] = rows[i].Charge
	}
	return out, nil
}

// DisputesByCharge returns the charge's mirrored disputes (inquiries
// included), oldest first (empty when there are none).
func (s *Store) DisputesByCharge(ctx context.Context, chargeID string) ([]Dispute, error) {
	var rows []disputeRow
	if err := s.conn(ctx).Where("charge_id = ?", chargeID).Order("created, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list disputes of charge %s: %w", chargeID, err)
	}
	out := make([]Dispute, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		if err := s.resolveCustomer(ctx, &rows[i].CustomerID, chargeID); err != nil {
			return nil, err
		}
		out[i] = rows[i].Dispute
	}
	return out, nil
}

// RefundsByCharge returns the charge's mirrored refunds, oldest first
// (empty when there are none).
func (s *Store) RefundsByCharge(ctx context.Context, chargeID string) ([]Refund, error) {
	var rows []refundRow
	if err := s.conn(ctx).Where("charge_id = ?", chargeID).Order("created, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list refunds of charge %s: %w", chargeID, err)
	}
	out := make([]Refund, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		if err := s.resolveCustomer(ctx, &rows[i].CustomerID, chargeID); err != nil {
			return nil, err
		}
		out[i] = rows[i].Refund
	}
	return out, nil
}

// FraudWarningsByCharge returns the charge's early fraud warnings, oldest
// first (empty when there are none).
func (s *Store) FraudWarningsByCharge(ctx context.Context, chargeID string) ([]FraudWarning, error) {
	var rows []fraudWarningRow
	if err := s.conn(ctx).Where("charge_id = ?", chargeID).Order("created, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list early fraud warnings of charge %s: %w", chargeID, err)
	}
	out := make([]FraudWarning, len(rows))
	for i := range rows {
		normalizeTimes(&rows[i])
		if err := s.resolveCustomer(ctx, &rows[i].CustomerID, chargeID); err != nil {
			return nil, err
		}
		out[i] = rows[i].FraudWarning
	}
	return out, nil
}

// chargeCustomer returns the customer of a mirrored charge, "" when the
// charge is unknown or has none.
func (s *Store) chargeCustomer(ctx context.Context, chargeID string) (string, error) {
	if chargeID == "" {
		return "", nil
	}
	var ids []string
	if err := s.conn(ctx).Model(&chargeRow{}).Where("id = ?", chargeID).Limit(1).Pluck("customer_id", &ids).Error; err != nil {
		return "", fmt.Errorf("look up customer of charge %s: %w", chargeID, err)
	}
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

// resolveCustomer fills *customerID from the charge when it is empty.
func (s *Store) resolveCustomer(ctx context.Context, customerID *string, chargeID string) error {
	if *customerID != "" || chargeID == "" {
		return nil
	}
	c, err := s.chargeCustomer(ctx, chargeID)
	if err != nil {
		return err
	}
	*customerID = c
	return nil
}

// resolveChildCustomer is resolveCustomer for a refund, dispute or fraud
// warning. When the mirror knows no customer for the charge, it takes the
// charge's children lock and reads again: a charge applied at the same time
// by another worker either committed before the lock (the second read sees
// its customer) or waits for this transaction before attaching children
// (applyCharge takes the same lock), so the child is never left unlinked.
func (s *Store) resolveChildCustomer(ctx context.Context, customerID *string, chargeID string) error {
	if err := s.resolveCustomer(ctx, customerID, chargeID); err != nil || *customerID != "" || chargeID == "" {
		return err
	}
	if err := s.db.Dialect.AdvisoryXactLock(ctx, s.conn(ctx), db.LockChargeChildren, chargeID); err != nil {
		return err
	}
	return s.resolveCustomer(ctx, customerID, chargeID)
}

// customerFromProvider fills *customerID from the provider's copy of the
// charge when the mirror has never seen that charge (and a fetcher is
// configured), and records on ch how that went. It returns the fetched
// charge, if any. A provider that cannot be reached is not an error: the
// event still applies, unlinked, and ch.ChargeLookup says so.
func (s *Store) customerFromProvider(ctx context.Context, customerID *string, chargeID string, ch *Change) (*Charge, error) {
	if s.fetcher == nil || *customerID != "" || chargeID == "" {
		return nil, nil
	}
	if _, err := s.Charge(ctx, chargeID); err == nil {
		return nil, nil // mirrored, just without a customer
	} else if !errs.Is(err, errs.ENOTFOUND) {
		return nil, err
	}
	fctx, cancel := context.WithTimeout(ctx, s.fetchTimeout)
	defer cancel()
	c, err := s.fetcher.FetchCharge(fctx, chargeID)
	if err != nil {
		ch.ChargeLookup = &ChargeLookup{ChargeID: chargeID, Err: err.Error()}
		return nil, nil
	}
	ch.ChargeLookup = &ChargeLookup{ChargeID: chargeID, Fetched: true, CustomerID: c.CustomerID}
	*customerID = c.CustomerID
	return &c, nil
}

// customerHasPM reports whether the mirrored customer has a default payment
// method (false when the customer is not mirrored).
func (s *Store) customerHasPM(ctx context.Context, customerID string) (bool, error) {
	if customerID == "" {
		return false, nil
	}
	var flags []bool
	if err := s.conn(ctx).Model(&customerRow{}).Where("id = ?", customerID).Limit(1).Pluck("has_default_payment_method", &flags).Error; err != nil {
		return false, fmt.Errorf("look up payment method of customer %s: %w", customerID, err)
	}
	return len(flags) > 0 && flags[0], nil
}

// withCustomerPM ORs each subscription's own default payment method with
// its customer's.
func (s *Store) withCustomerPM(ctx context.Context, subs []Subscription) ([]Subscription, error) {
	cache := map[string]bool{}
	for i := range subs {
		if subs[i].HasDefaultPaymentMethod || subs[i].CustomerID == "" {
			continue
		}
		has, ok := cache[subs[i].CustomerID]
		if !ok {
			var err error
			if has, err = s.customerHasPM(ctx, subs[i].CustomerID); err != nil {
				return nil, err
			}
			cache[subs[i].CustomerID] = has
		}
		subs[i].HasDefaultPaymentMethod = has
	}
	return subs, nil
}

// withFailureCodes fills LastFailureCode of open, attempted invoices from
// their latest charge when the payment_failed event did not carry one (the
// charge.failed event often arrives after invoice.payment_failed).
func (s *Store) withFailureCodes(ctx context.Context, invs []Invoice) ([]Invoice, error) {
	for i := range invs {
		inv := &invs[i]
		if inv.LastFailureCode != "" || inv.ChargeID == "" || inv.AttemptCount == 0 || inv.Status != "open" {
			continue
		}
		var codes []string
		if err := s.conn(ctx).Model(&chargeRow{}).Where("id = ?", inv.ChargeID).Limit(1).Pluck("failure_code", &codes).Error; err != nil {
			return nil, fmt.Errorf("look up failure of charge %s: %w", inv.ChargeID, err)
		}
		if len(codes) > 0 {
			inv.LastFailureCode = codes[0]
		}
	}
	return invs, nil
}

// normalizeTimes converts every time in the struct v points to (embedded
// structs included) to UTC: PostgreSQL hands them back in the session's
// zone, and callers compare and format them as UTC.
func normalizeTimes(v any) {
	normalizeValue(reflect.ValueOf(v).Elem())
}

var timeType = reflect.TypeOf(time.Time{})

func normalizeValue(v reflect.Value) {
	if v.Kind() != reflect.Struct {
		return
	}
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch {
		case f.Type() == timeType:
			f.Set(reflect.ValueOf(f.Interface().(time.Time).UTC()))
		case f.Kind() == reflect.Pointer && f.Type().Elem() == timeType:
			if !f.IsNil() {
				t := f.Elem().Interface().(time.Time).UTC()
				f.Set(reflect.ValueOf(&t))
			}
		case f.Kind() == reflect.Struct:
			normalizeValue(f)
		}
	}
}

// CustomerEmails returns the mirrored email of each of ids that has one, in
// one query (a queue page shows fifty customers).
func (s *Store) CustomerEmails(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID    string
		Email string
	}
	if err := s.conn(ctx).Model(&customerRow{}).Select("id, email").Where("id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load customer emails: %w", err)
	}
	for _, r := range rows {
		if r.Email != "" {
			out[r.ID] = r.Email
		}
	}
	return out, nil
}

// CustomerInScope returns nil when customer id is within the scope of ctx's
// principal — at least one of their cases is (auth.Scope) — and ENOTFOUND,
// worded like a missing customer, when it is not: a scoped user learns
// nothing of customers outside their scope. Unrestricted callers always
// get nil.
func (s *Store) CustomerInScope(ctx context.Context, id string) error {
	ok, err := auth.CustomerVisible(ctx, s.conn(ctx), id)
	if err != nil {
		return err
	}
	if !ok {
		return errs.NotFound("no customer %q in the billing mirror", id)
	}
	return nil
}
