package disputes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

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
}

// StatsReader computes dispute analytics from the billing mirror.
type StatsReader struct {
	db     *db.DB
	policy Policy
}

// NewStatsReader returns a reader using policy's fees and monitoring levels.
func NewStatsReader(d *db.DB, policy Policy) *StatsReader { return &StatsReader{db: d, policy: policy} }

// groupExpr is the SQL of each grouping's key.
var groupExpr = map[string]string{
	GroupByReason:       "d.reason",
	GroupByNetworkCode:  "d.network_reason_code",
	GroupByBrand:        "d.card_brand",
	GroupByBusinessLine: "COALESCE(NULLIF(bc.business_line, ''), bs.product_id, '')",
}

type statsRow struct {
	Key           string
	Currency      string
	N             int64
	Won           int64
	Lost          int64
	Accepted      int64
	Amount        int64
	WonAmount     int64
	Chargebacks   int64
	LostCountered int64
	Inquiries     int64
	Converted     int64
	Missed        int64
}

// Stats returns the figures of disputes created in [q.From, q.To), grouped
// by q.GroupBy, with their totals and the monthly monitoring ratios per
// brand. business_line is the dispute case's business line when one was set
// on it, else the product of the disputed charge's subscription (the
// product the customer pays for), else "" (one-off charges). EINVALID for
// an unknown grouping or an empty range.
func (r *StatsReader) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	key, ok := groupExpr[q.GroupBy]
	if !ok {
		return Stats{}, errs.Coded(errs.EINVALID, "invalid_group_by", "group_by must be one of %v", GroupBys())
	}
	from, to := q.From.UTC(), q.To.UTC()
	if !from.Before(to) {
		return Stats{}, errs.Coded(errs.EINVALID, "invalid_range", "from must be before to")
	}
	joins := ""
	if q.GroupBy == GroupByBusinessLine {
		joins = " LEFT JOIN cases bc ON bc.kind = 'dispute' AND bc.subject_id = d.id LEFT JOIN billing_subscriptions bs ON bs.id = bc.subscription_id"
	}
	sql := `SELECT ` + key + ` AS key, d.currency AS currency, count(*) AS n,
  sum(CASE WHEN d.status = 'won' THEN 1 ELSE 0 END) AS won,
  sum(CASE WHEN d.status = 'lost' THEN 1 ELSE 0 END) AS lost,
  sum(CASE WHEN d.status = 'lost' AND d.submission_count = 0 AND m.dispute_id IS NULL THEN 1 ELSE 0 END) AS accepted,
  sum(d.amount) AS amount,
  sum(CASE WHEN d.status = 'won' THEN d.amount ELSE 0 END) AS won_amount,
  sum(CASE WHEN d.status LIKE 'warning%' THEN 0 ELSE 1 END) AS chargebacks,
  sum(CASE WHEN d.status = 'lost' AND d.submission_count > 0 THEN 1 ELSE 0 END) AS lost_countered,
  sum(CASE WHEN iq.dispute_id IS NOT NULL OR d.status LIKE 'warning%' THEN 1 ELSE 0 END) AS inquiries,
  sum(CASE WHEN iq.dispute_id IS NOT NULL AND d.status IN ('needs_response', 'under_review', 'won', 'lost') THEN 1 ELSE 0 END) AS converted,
  sum(CASE WHEN m.dispute_id IS NULL THEN 0 ELSE 1 END) AS missed
FROM billing_disputes d
LEFT JOIN dispute_deadline_marks m ON m.dispute_id = d.id AND m.mark = 'missed'
LEFT JOIN (SELECT DISTINCT c.dispute_id FROM case_timeline t JOIN cases c ON c.id = t.case_id
           WHERE t.to_state = 'warning_needs_response' AND c.dispute_id IS NOT NULL) iq ON iq.dispute_id = d.id` + joins + `
WHERE d.created >= ? AND d.created < ?
GROUP BY 1, 2`
	var rows []statsRow
	if err := r.db.WithContext(ctx).Raw(sql, from, to).Scan(&rows).Error; err != nil {
		return Stats{}, fmt.Errorf("dispute stats: %w", err)
	}
	out := Stats{From: from, To: to, GroupBy: q.GroupBy, Groups: []StatsGroup{}, Totals: newGroup("")}
	byKey := map[string]*StatsGroup{}
	var keys []string
	for _, row := range rows {
		g, ok := byKey[row.Key]
		if !ok {
			ng := newGroup(row.Key)
			g = &ng
			byKey[row.Key] = g
			keys = append(keys, row.Key)
		}
		r.add(g, row)
		r.add(&out.Totals, row)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out.Groups = append(out.Groups, finish(*byKey[k]))
	}
	out.Totals = finish(out.Totals)
	mon, err := r.monitoring(ctx, from, to)
	if err != nil {
		return Stats{}, err
	}
	out.Monitoring = mon
	return out, nil
}

func newGroup(key string) StatsGroup {
	return StatsGroup{Key: key, AmountDisputed: Money{}, RecoveredNetOfFees: Money{}}
}

func (r *StatsReader) add(g *StatsGroup, row statsRow) {
	g.Count += row.N
	g.Won += row.Won
	g.Lost += row.Lost
	g.Accepted += row.Accepted
	g.Inquiries += row.Inquiries
	g.Converted += row.Converted
	g.DeadlinesMissed += row.Missed
	cur := strings.ToLower(row.Currency)
	g.AmountDisputed[cur] += row.Amount
	g.RecoveredNetOfFees[cur] += row.WonAmount - row.Chargebacks*r.policy.Fees.DisputeFee - row.LostCountered*r.policy.Fees.CounterFee
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

type monthRow struct {
	Month string
	Brand string
	N     int64
}

// monitoring computes each brand's monthly dispute activity in [from, to).
func (r *StatsReader) monitoring(ctx context.Context, from, to time.Time) ([]MonitoringMonth, error) {
	month := r.db.Dialect.MonthSQL("d.created")
	var disputes []monthRow
	if err := r.db.WithContext(ctx).Raw(`SELECT `+month+` AS month, d.card_brand AS brand, count(*) AS n
FROM billing_disputes d WHERE d.created >= ? AND d.created < ? AND d.status NOT LIKE 'warning%'
GROUP BY 1, 2`, from, to).Scan(&disputes).Error; err != nil {
		return nil, fmt.Errorf("dispute monitoring: %w", err)
	}
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
