package disputes

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/errs"
)

// Groupings of GET /disputes/stats.
const (
	GroupByReason       = "reason"        // Stripe's dispute reason
	GroupByNetworkCode  = "network_code"  // the card network's reason code
	GroupByBrand        = "brand"         // the card brand
	GroupByBusinessLine = "business_line" // see StatsReader.Stats
)

// GroupBys lists the groupings.
func GroupBys() []string {
	return []string{GroupByReason, GroupByNetworkCode, GroupByBrand, GroupByBusinessLine}
}

// Money is an amount per currency, in minor units.
type Money map[string]int64

// StatsGroup is one group's dispute figures.
type StatsGroup struct {
	Key      string `json:"key"`
	Count    int64  `json:"count"`
	Won      int64  `json:"won"`
	Lost     int64  `json:"lost"`
	Accepted int64  `json:"accepted"` // lost with no evidence ever submitted and no missed deadline
	// WinRate is won ÷ (won + lost); null before any is decided.
	WinRate        *float64 `json:"win_rate"`
	AmountDisputed Money    `json:"amount_disputed"`
	// RecoveredNetOfFees is what was won back minus what the disputes cost:
	// won amounts − dispute_fee × chargebacks − counter_fee × chargebacks
	// lost after evidence (the counter fee is refunded on a win).
	RecoveredNetOfFees Money `json:"recovered_net_of_fees"`
	// Inquiries opened as such (or still one); Converted of them became
	// chargebacks; InquiryConversion is Converted ÷ Inquiries.
	Inquiries         int64    `json:"inquiries"`
	Converted         int64    `json:"inquiries_converted"`
	InquiryConversion *float64 `json:"inquiry_conversion"`
	DeadlinesMissed   int64    `json:"deadlines_missed"`
}

// MonitoringMonth is one brand's dispute activity in one month against the
// network's monitoring levels.
type MonitoringMonth struct {
	Brand    string `json:"brand"`
	Month    string `json:"month"`    // YYYY-MM (UTC), by dispute date
	Disputes int64  `json:"disputes"` // chargebacks (inquiries not counted)
	// SuccessfulCharges is the denominator: the same month's (Visa and
	// others) or the previous month's (Mastercard ECM) successful charges
	// of the brand, as DenominatorMonth says.
	SuccessfulCharges int64    `json:"successful_charges"`
	DenominatorMonth  string   `json:"denominator_month"`
	Ratio             *float64 `json:"ratio"` // null without charges to divide by
	// Level is the most severe monitoring level the month reaches (ratio
	// and count both at least the level's), null when none.
	Level *string `json:"level"`
}

// Stats is the answer of GET /disputes/stats.
type Stats struct {
	From       time.Time         `json:"from"`
	To         time.Time         `json:"to"`
	GroupBy    string            `json:"group_by"`
	Groups     []StatsGroup      `json:"groups"`
	Totals     StatsGroup        `json:"totals"`
	Monitoring []MonitoringMonth `json:"monitoring"`
}

// StatsQuery selects disputes created in [From, To).
type StatsQuery struct {
	From, To time.Time
	GroupBy  string
	// Scope, when it limits anything, keeps the disputes of customers in
	// it (auth.Scope's rule for mirrored objects). Such a query reads the
	// mirror over the whole range — the rollup holds no customer — and
	// answers no Monitoring: the networks' ratio is the account's disputes
	// over all its successful charges, which a scope cannot divide.
	Scope auth.Scope
}

// StatsReader computes dispute analytics from the billing mirror, through
// the monthly rollup dispute_stats_months (see Refresh).
type StatsReader struct {
	db     *db.DB
	policy Policy
	clock  clock.Clock
	log    *slog.Logger
}

// NewStatsReader returns a reader using policy's fees and monitoring levels.
func NewStatsReader(d *db.DB, policy Policy, clk clock.Clock, log *slog.Logger) *StatsReader {
	if clk == nil {
		clk = clock.System{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &StatsReader{db: d, policy: policy, clock: clk, log: log}
}

// statsRow is one combination of every dimension, with its disputes'
// number and amount: what the rollup stores and the edges are read as.
type statsRow struct {
	Month        string
	Brand        string
	Reason       string
	NetworkCode  string
	Currency     string
	BusinessLine string
	Status       string
	Countered    bool
	Missed       bool
	WasInquiry   bool
	N            int64
	Amount       int64
}

// statsColumns are dispute_stats_months' columns in statsSelect's order.
const statsColumns = "month, brand, reason, network_code, currency, business_line, status, countered, missed, was_inquiry, n, amount"

// statsSelect groups the disputes created in [?, ?) by every dimension.
// business_line is the dispute case's business line when one was set on
// it, else the product of the case's subscription, else "".
func (r *StatsReader) statsSelect(extra string) string {
	return `SELECT ` + r.db.Dialect.MonthSQL("d.created") + ` AS month, d.card_brand AS brand, d.reason AS reason,
  d.network_reason_code AS network_code, d.currency AS currency,
  COALESCE(NULLIF(bc.business_line, ''), bs.product_id, '') AS business_line, d.status AS status,
  CASE WHEN d.submission_count > 0 THEN TRUE ELSE FALSE END AS countered,
  CASE WHEN m.dispute_id IS NULL THEN FALSE ELSE TRUE END AS missed,
  CASE WHEN EXISTS (SELECT 1 FROM case_timeline t WHERE t.case_id = bc.id AND t.to_state = 'warning_needs_response') THEN TRUE ELSE FALSE END AS was_inquiry,
  count(*) AS n, sum(d.amount) AS amount
FROM billing_disputes d
LEFT JOIN cases bc ON bc.kind = 'dispute' AND bc.subject_id = d.id
LEFT JOIN billing_subscriptions bs ON bs.id = bc.subscription_id
LEFT JOIN dispute_deadline_marks m ON m.dispute_id = d.id AND m.mark = 'missed'
WHERE d.created >= ? AND d.created < ?` + extra + `
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10`
}

func monthStart(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Stats returns the figures of disputes created in [q.From, q.To), grouped
// by q.GroupBy (business_line: see statsSelect), with their totals and the
// monthly monitoring ratios per brand. Whole months are read from the
// rollup, as fresh as its last Refresh; partial months at the edges from
// the mirror itself. EINVALID for an unknown grouping or an empty range.
func (r *StatsReader) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	if !slices.Contains(GroupBys(), q.GroupBy) {
		return Stats{}, errs.Coded(errs.EINVALID, "invalid_group_by", "group_by must be one of %v", GroupBys())
	}
	from, to := q.From.UTC(), q.To.UTC()
	if !from.Before(to) {
		return Stats{}, errs.Coded(errs.EINVALID, "invalid_range", "from must be before to")
	}
	firstFull := monthStart(from)
	if firstFull.Before(from) {
		firstFull = firstFull.AddDate(0, 1, 0)
	}
	lastFullEnd := monthStart(to)
	var rows []statsRow
	// The dispute's customer, or its charge's when it names none (as
	// billing.Store resolves it).
	scope, scopeArgs := q.Scope.CustomerSQL("COALESCE(NULLIF(d.customer_id, ''), (SELECT mc.customer_id FROM billing_charges mc WHERE mc.id = d.charge_id))")
	if scope != "" {
		scope = " AND " + scope
	}
	raw := func(a, b time.Time) error {
		var part []statsRow
		if err := r.db.WithContext(ctx).Raw(r.statsSelect(scope), append([]any{a, b}, scopeArgs...)...).Scan(&part).Error; err != nil {
			return fmt.Errorf("dispute stats: %w", err)
		}
		rows = append(rows, part...)
		return nil
	}
	if !firstFull.Before(lastFullEnd) || scope != "" {
		if err := raw(from, to); err != nil {
			return Stats{}, err
		}
	} else {
		if from.Before(firstFull) {
			if err := raw(from, firstFull); err != nil {
				return Stats{}, err
			}
		}
		var part []statsRow
		if err := r.db.WithContext(ctx).Raw("SELECT "+statsColumns+" FROM dispute_stats_months WHERE month >= ? AND month < ?",
			firstFull.Format("2006-01"), lastFullEnd.Format("2006-01")).Scan(&part).Error; err != nil {
			return Stats{}, fmt.Errorf("dispute stats: rollup: %w", err)
		}
		rows = append(rows, part...)
		if lastFullEnd.Before(to) {
			if err := raw(lastFullEnd, to); err != nil {
				return Stats{}, err
			}
		}
	}
	out := Stats{From: from, To: to, GroupBy: q.GroupBy, Groups: []StatsGroup{}, Totals: newGroup("")}
	byKey := map[string]*StatsGroup{}
	var keys []string
	type brandMonth struct{ brand, month string }
	chargebacks := map[brandMonth]int64{}
	for _, row := range rows {
		k := row.key(q.GroupBy)
		g, ok := byKey[k]
		if !ok {
			ng := newGroup(k)
			g = &ng
			byKey[k] = g
			keys = append(keys, k)
		}
		r.add(g, row)
		r.add(&out.Totals, row)
		if !row.inquiryNow() {
			chargebacks[brandMonth{row.Brand, row.Month}] += row.N
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		out.Groups = append(out.Groups, finish(*byKey[k]))
	}
	out.Totals = finish(out.Totals)
	var counts []monthRow
	for bm, n := range chargebacks {
		counts = append(counts, monthRow{Month: bm.month, Brand: bm.brand, N: n})
	}
	if scope != "" {
		out.Monitoring = []MonitoringMonth{}
		return out, nil
	}
	mon, err := r.monitoring(ctx, counts, from, to)
	if err != nil {
		return Stats{}, err
	}
	out.Monitoring = mon
	return out, nil
}

func (row statsRow) key(groupBy string) string {
	switch groupBy {
	case GroupByNetworkCode:
		return row.NetworkCode
	case GroupByBrand:
		return row.Brand
	case GroupByBusinessLine:
		return row.BusinessLine
	}
	return row.Reason
}

// inquiryNow: the dispute is (still) an inquiry, not a chargeback.
func (row statsRow) inquiryNow() bool { return strings.HasPrefix(row.Status, "warning_") }

func newGroup(key string) StatsGroup {
	return StatsGroup{Key: key, AmountDisputed: Money{}, RecoveredNetOfFees: Money{}}
}

func (r *StatsReader) add(g *StatsGroup, row statsRow) {
	n := row.N
	g.Count += n
	cur := strings.ToLower(row.Currency)
	g.AmountDisputed[cur] += row.Amount
	net := int64(0)
	if !row.inquiryNow() {
		net -= n * r.policy.Fees.DisputeFee
	}
	switch row.Status {
	case "won":
		g.Won += n
		net += row.Amount
	case "lost":
		g.Lost += n
		if row.Countered {
			net -= n * r.policy.Fees.CounterFee
		} else if !row.Missed {
			g.Accepted += n
		}
	}
	g.RecoveredNetOfFees[cur] += net
	if row.WasInquiry || row.inquiryNow() {
		g.Inquiries += n
	}
	if row.WasInquiry && slices.Contains([]string{"needs_response", "under_review", "won", "lost"}, row.Status) {
		g.Converted += n
	}
	if row.Missed {
		g.DeadlinesMissed += n
	}
}

func finish(g StatsGroup) StatsGroup {
	g.WinRate = ratio(g.Won, g.Won+g.Lost)
	g.InquiryConversion = ratio(g.Converted, g.Inquiries)
	return g
}

func ratio(a, b int64) *float64 {
	if b == 0 {
		return nil
	}
	v := float64(a) / float64(b)
	return &v
}

// Refresh brings the rollup up to date: the months of disputes changed (or
// deadlines marked missed) since the last refresh are recomputed, and the
// whole rollup once a day (which also catches a business line edited on an
// older case). Concurrent refreshes (replicas) take turns on the refresh
// row's lock. It returns the months recomputed (-1: all).
func (r *StatsReader) Refresh(ctx context.Context) (int, error) {
	months := 0
	err := r.db.Transact(ctx, func(tx *gorm.DB) error {
		var st struct {
			Watermark *time.Time
			FullAt    *time.Time
		}
		if err := r.db.Dialect.ForUpdate(tx.WithContext(ctx).Table("dispute_stats_refresh").Select("watermark, full_at").Where("id = 1")).
			Take(&st).Error; err != nil {
			return fmt.Errorf("dispute stats refresh state: %w", err)
		}
		now := r.clock.Now().UTC()
		full := st.Watermark == nil || st.FullAt == nil || st.FullAt.UTC().Format("2006-01-02") != now.Format("2006-01-02")
		if full {
			if err := tx.WithContext(ctx).Exec("DELETE FROM dispute_stats_months").Error; err != nil {
				return err
			}
			if err := tx.WithContext(ctx).Exec("INSERT INTO dispute_stats_months ("+statsColumns+") "+r.statsSelect(""),
				time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)).Error; err != nil {
				return fmt.Errorf("dispute stats rebuild: %w", err)
			}
			months = -1
			return tx.WithContext(ctx).Exec("UPDATE dispute_stats_refresh SET watermark = ?, full_at = ? WHERE id = 1", now, now).Error
		}
		// Slack for transactions that stamped updated_at before the last
		// refresh but committed after it.
		since := st.Watermark.UTC().Add(-5 * time.Minute)
		month := r.db.Dialect.MonthSQL("d.created")
		var dirty []string
		if err := tx.WithContext(ctx).Raw(`SELECT DISTINCT `+month+` FROM billing_disputes d WHERE d.updated_at >= ?
UNION SELECT DISTINCT `+month+` FROM dispute_deadline_marks m JOIN billing_disputes d ON d.id = m.dispute_id WHERE m.at >= ?`, since, since).
			Scan(&dirty).Error; err != nil {
			return fmt.Errorf("dispute stats dirty months: %w", err)
		}
		for _, m := range dirty {
			start, err := time.Parse("2006-01", m)
			if err != nil {
				continue
			}
			if err := tx.WithContext(ctx).Exec("DELETE FROM dispute_stats_months WHERE month = ?", m).Error; err != nil {
				return err
			}
			if err := tx.WithContext(ctx).Exec("INSERT INTO dispute_stats_months ("+statsColumns+") "+r.statsSelect(""), start, start.AddDate(0, 1, 0)).Error; err != nil {
				return fmt.Errorf("dispute stats refresh %s: %w", m, err)
			}
		}
		months = len(dirty)
		return tx.WithContext(ctx).Exec("UPDATE dispute_stats_refresh SET watermark = ? WHERE id = 1", now).Error
	})
	return months, err
}

// Run refreshes the rollup now and then every interval until ctx is
// cancelled, logging failures.
func (r *StatsReader) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("disputes: stats rollup refresh failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

type monthRow struct {
	Month string
	Brand string
	N     int64
}

// monitoring compares each brand's monthly chargebacks (counts) with its
// successful charges.
func (r *StatsReader) monitoring(ctx context.Context, disputes []monthRow, from, to time.Time) ([]MonitoringMonth, error) {
	first := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0).Format("2006-01")
	var charges []monthRow
	if err := r.db.WithContext(ctx).Raw(`SELECT month, brand, sum(succeeded_count) AS n FROM billing_charge_months
WHERE month >= ? AND month <= ? GROUP BY 1, 2`, first, to.Format("2006-01")).Scan(&charges).Error; err != nil {
		return nil, fmt.Errorf("dispute monitoring: charges: %w", err)
	}
	succeeded := map[[2]string]int64{}
	for _, c := range charges {
		succeeded[[2]string{c.Brand, c.Month}] = c.N
	}
	out := make([]MonitoringMonth, 0, len(disputes))
	for _, d := range disputes {
		m := MonitoringMonth{Brand: d.Brand, Month: d.Month, Disputes: d.N, DenominatorMonth: d.Month}
		levels := r.policy.Monitoring.Visa
		if d.Brand == "mastercard" {
			levels = r.policy.Monitoring.Mastercard
			if t, err := time.Parse("2006-01", d.Month); err == nil {
				m.DenominatorMonth = t.AddDate(0, -1, 0).Format("2006-01")
			}
		} else if d.Brand != "visa" {
			levels = nil
		}
		m.SuccessfulCharges = succeeded[[2]string{d.Brand, m.DenominatorMonth}]
		m.Ratio = ratio(d.N, m.SuccessfulCharges)
		for _, l := range levels {
			if m.Ratio != nil && *m.Ratio >= l.Ratio && d.N >= l.MinCount {
				name := l.Name
				m.Level = &name
			}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b MonitoringMonth) int {
		if c := strings.Compare(a.Brand, b.Brand); c != 0 {
			return c
		}
		return strings.Compare(a.Month, b.Month)
	})
	return out, nil
}
