package reports

import (
	"sort"
	"strconv"
	"time"

	"github.com/recourse-hq/recourse/disputes"
	"github.com/recourse-hq/recourse/internal/export"
)

// Report is one answered report: its JSON shape, and its figures flattened
// to rows for CSV and JSON-lines exports.
type Report interface {
	Rows() []Row
}

// Header opens every report but the disputes one (which keeps
// disputes.Stats' shape).
type Header struct {
	Report   Name      `json:"report"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Interval Interval  `json:"interval,omitempty"`
	GroupBy  string    `json:"group_by"`
	// TZ is the time zone of the buckets and dates ("UTC" unless asked).
	TZ string `json:"tz"`
}

func header(q Query) Header {
	h := Header{Report: q.Report, From: q.From.UTC(), To: q.To.UTC(), GroupBy: q.GroupBy, TZ: q.Location().String()}
	if Bucketed(q.Report) {
		h.Interval = q.Interval
	}
	return h
}

// Row is one figure of a report, in a long ("tidy") shape every report
// flattens to: which section of the report, which bucket (empty for
// figures over the whole range), which group, which metric (with its
// currency, for money), and the value.
type Row struct {
	Report      string `json:"report"`
	Section     string `json:"section"`
	BucketStart string `json:"bucket_start"`
	BucketEnd   string `json:"bucket_end"`
	Group       string `json:"group"`
	Metric      string `json:"metric"`
	Value       string `json:"value"`
}

// ExportColumns are the CSV columns of a report export.
var ExportColumns = []export.Column[Row]{
	{Name: "report", Value: func(r Row) string { return r.Report }},
	{Name: "section", Value: func(r Row) string { return r.Section }},
	{Name: "bucket_start", Value: func(r Row) string { return r.BucketStart }},
	{Name: "bucket_end", Value: func(r Row) string { return r.BucketEnd }},
	{Name: "group", Value: func(r Row) string { return r.Group }},
	{Name: "metric", Value: func(r Row) string { return r.Metric }},
	{Name: "value", Value: func(r Row) string { return r.Value }},
}

// rowWriter appends rows of one report.
type rowWriter struct {
	report string
	rows   []Row
}

func (w *rowWriter) add(section string, b *Bucket, group, metric, value string) {
	r := Row{Report: w.report, Section: section, Group: group, Metric: metric, Value: value}
	if b != nil {
		r.BucketStart, r.BucketEnd = b.Start.Format(time.RFC3339), b.End.Format(time.RFC3339) // in the query's zone
	}
	w.rows = append(w.rows, r)
}

func (w *rowWriter) int(section string, b *Bucket, group, metric string, v int64) {
	w.add(section, b, group, metric, strconv.FormatInt(v, 10))
}

func (w *rowWriter) float(section string, b *Bucket, group, metric string, v *float64) {
	w.add(section, b, group, metric, floatCell(v))
}

func floatCell(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func (w *rowWriter) money(section, group, metric string, m map[string]int64) {
	for _, cur := range sortedMapKeys(m) {
		w.int(section, nil, group, metric+"."+cur, m[cur])
	}
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// bucketRows puts every group of every bucket (section "bucket") and
// every total (section "totals") of a bucketed report.
func bucketRows[G any](buckets []GroupedBucket[G], totals []G, put func(section string, b *Bucket, g G)) {
	for i := range buckets {
		for _, g := range buckets[i].Groups {
			put("bucket", &buckets[i].Bucket, g)
		}
	}
	for _, g := range totals {
		put("totals", nil, g)
	}
}

// Rows flattens the volume report: section "bucket" per bucket and group,
// "totals" per group.
func (r *VolumeReport) Rows() []Row {
	w := rowWriter{report: string(Volume)}
	put := func(section string, b *Bucket, g VolumeGroup) {
		w.int(section, b, g.Key, "opened", g.Opened)
		w.int(section, b, g.Key, "closed", g.Closed)
		w.int(section, b, g.Key, "reopened", g.Reopened)
		w.int(section, b, g.Key, "backlog", g.Backlog)
	}
	bucketRows(r.Buckets, r.Totals, put)
	return w.rows
}

// Rows flattens the resolution report.
func (r *ResolutionReport) Rows() []Row {
	w := rowWriter{report: string(Resolution)}
	put := func(section string, b *Bucket, g ResolutionGroup) {
		w.int(section, b, g.Key, "first_responses", g.FirstResponses)
		w.float(section, b, g.Key, "first_response_seconds_p50", g.FirstResponseSeconds.P50)
		w.float(section, b, g.Key, "first_response_seconds_p90", g.FirstResponseSeconds.P90)
		w.float(section, b, g.Key, "first_response_business_seconds_p50", g.FirstResponseBusinessSecs.P50)
		w.float(section, b, g.Key, "first_response_business_seconds_p90", g.FirstResponseBusinessSecs.P90)
		w.int(section, b, g.Key, "first_response_met", g.FirstResponseMet)
		w.float(section, b, g.Key, "first_response_attainment_pct", g.FirstResponseAttainmentPct)
		w.int(section, b, g.Key, "resolved", g.Resolved)
		w.float(section, b, g.Key, "resolution_seconds_p50", g.ResolutionSeconds.P50)
		w.float(section, b, g.Key, "resolution_seconds_p90", g.ResolutionSeconds.P90)
		w.float(section, b, g.Key, "resolution_business_seconds_p50", g.ResolutionBusinessSecs.P50)
		w.float(section, b, g.Key, "resolution_business_seconds_p90", g.ResolutionBusinessSecs.P90)
		w.int(section, b, g.Key, "resolution_met", g.ResolutionMet)
		w.float(section, b, g.Key, "resolution_attainment_pct", g.ResolutionAttainmentPct)
		w.int(section, b, g.Key, "first_response_breaches", g.FirstResponseBreaches)
		w.int(section, b, g.Key, "resolution_breaches", g.ResolutionBreaches)
	}
	bucketRows(r.Buckets, r.Totals, put)
	return w.rows
}

// Rows flattens the team report: section "group" per agent or team, and
// "totals".
func (r *TeamReport) Rows() []Row {
	w := rowWriter{report: string(TeamWork)}
	put := func(section string, g TeamGroup) {
		w.int(section, nil, g.Key, "handled", g.Handled)
		w.int(section, nil, g.Key, "actions", g.Actions)
		w.int(section, nil, g.Key, "actions_succeeded", g.ActionsSucceeded)
		w.int(section, nil, g.Key, "approvals_asked", g.ApprovalsAsked)
		w.int(section, nil, g.Key, "approvals_given", g.ApprovalsGiven)
		w.int(section, nil, g.Key, "approvals_rejected", g.ApprovalsRejected)
		w.int(section, nil, g.Key, "first_responses", g.FirstResponses)
		w.int(section, nil, g.Key, "first_response_met", g.FirstResponseMet)
		w.float(section, nil, g.Key, "first_response_attainment_pct", g.FirstResponseAttainmentPct)
		w.int(section, nil, g.Key, "resolution_met", g.ResolutionMet)
		w.float(section, nil, g.Key, "resolution_attainment_pct", g.ResolutionAttainmentPct)
		w.int(section, nil, g.Key, "reopened", g.Reopened)
		w.float(section, nil, g.Key, "reopen_rate_pct", g.ReopenRatePct)
	}
	for _, g := range r.Groups {
		put("group", g)
	}
	put("totals", r.Totals)
	return w.rows
}

// Rows flattens the recovery report: one section per figure.
func (r *RecoveryReport) Rows() []Row {
	w := rowWriter{report: string(Recovery)}
	for _, st := range sortedMapKeys(r.FailedRenewals) {
		w.int("failed_renewals", nil, st, "cases", r.FailedRenewals[st])
	}
	w.money("failed_renewals", "recovered", "revenue", r.RecoveredRevenue)
	w.float("failed_renewals", nil, AllKey, "recovery_rate_pct", r.RecoveryRatePct)
	for _, st := range sortedMapKeys(r.TrialConversions) {
		w.int("trial_conversions", nil, st, "cases", r.TrialConversions[st])
	}
	w.float("trial_conversions", nil, AllKey, "conversion_rate_pct", r.ConversionRatePct)
	for _, st := range sortedMapKeys(r.Cancellations) {
		w.int("cancellations", nil, st, "cases", r.Cancellations[st])
	}
	w.int("cancellations", nil, "retained", "saved_by_retention_offer", r.SavedByOffer)
	for _, rr := range r.Refunds {
		w.int("refunds", nil, rr.Reason, "count."+rr.Currency, rr.Count)
		w.int("refunds", nil, rr.Reason, "amount."+rr.Currency, rr.Amount)
	}
	return w.rows
}

// Rows flattens the root-cause report: one section per list, metrics
// count, previous and delta per key.
func (r *RootCauseReport) Rows() []Row {
	w := rowWriter{report: string(RootCauses)}
	for _, s := range r.Sections() {
		for _, c := range s.Causes {
			w.int(s.Name, nil, c.Key, "count", c.Count)
			w.int(s.Name, nil, c.Key, "previous", c.Previous)
			w.int(s.Name, nil, c.Key, "delta", c.Delta)
		}
	}
	return w.rows
}

// CauseSection is one named list of a root-cause report.
type CauseSection struct {
	Name   string
	Causes []Cause
}

// Sections lists the report's lists in order.
func (r *RootCauseReport) Sections() []CauseSection {
	return []CauseSection{{"decline_codes", r.DeclineCodes}, {"refund_reasons", r.RefundReasons}, {"dispute_reasons", r.DisputeReasons},
		{"escalation_teams", r.EscalationTeams}, {"escalation_reasons", r.EscalationReasons}, {"tags", r.Tags}}
}

// Rows flattens the dispute statistics: section "group" per group and
// "totals", amounts per currency.
func (r *DisputeReport) Rows() []Row {
	w := rowWriter{report: string(Disputes)}
	put := func(section string, g disputes.StatsGroup) {
		w.int(section, nil, g.Key, "count", g.Count)
		w.int(section, nil, g.Key, "won", g.Won)
		w.int(section, nil, g.Key, "lost", g.Lost)
		w.int(section, nil, g.Key, "accepted", g.Accepted)
		w.float(section, nil, g.Key, "win_rate", g.WinRate)
		w.money(section, g.Key, "amount_disputed", g.AmountDisputed)
		w.money(section, g.Key, "recovered_net_of_fees", g.RecoveredNetOfFees)
		w.int(section, nil, g.Key, "inquiries", g.Inquiries)
		w.int(section, nil, g.Key, "inquiries_converted", g.Converted)
		w.float(section, nil, g.Key, "inquiry_conversion", g.InquiryConversion)
		w.int(section, nil, g.Key, "deadlines_missed", g.DeadlinesMissed)
	}
	for _, g := range r.Groups {
		put("group", g)
	}
	put("totals", r.Totals)
	for _, m := range r.Monitoring {
		w.int("monitoring", nil, m.Brand, "disputes."+m.Month, m.Disputes)
		w.int("monitoring", nil, m.Brand, "successful_charges."+m.Month, m.SuccessfulCharges)
		w.float("monitoring", nil, m.Brand, "ratio."+m.Month, m.Ratio)
	}
	return w.rows
}
