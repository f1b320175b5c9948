package actions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
)

// Outcome labels of recourse_actions_total: an action's statuses once it
// leaves executing, plus pending_approval (requested or sent back for a
// supervisor's approval) and in_doubt (a provider attempt whose answer was
// lost — the action stays executing and is retried with its key, so one
// action may count in_doubt more than once before its final outcome).
const (
	OutcomeSucceeded       = string(StatusSucceeded)
	OutcomeFailed          = string(StatusFailed)
	OutcomeRefused         = string(StatusRefused)
	OutcomeRejected        = string(StatusRejected)
	OutcomePendingApproval = string(StatusPendingApproval)
	OutcomeInDoubt         = "in_doubt"
)

// actionMetrics are the package's collectors. Each is moved only after the
// transaction that records the change has committed, once per change.
type actionMetrics struct {
	outcomes  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	requested *prometheus.CounterVec
	decided   *prometheus.CounterVec
	executing *executingCollector
}

func newActionMetrics(s *Service) *actionMetrics {
	m := &actionMetrics{
		executing: &executingCollector{s: s,
			count: prometheus.NewDesc("recourse_actions_executing", "Actions executing now: sent or about to be sent to the provider, outcome not recorded yet.", nil, nil),
			oldest: prometheus.NewDesc("recourse_actions_executing_oldest_age_seconds",
				"How long the oldest executing action has been executing (since its request, or its approval); 0 when none is.", nil, nil),
		},
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recourse_actions_total",
			Help: "Action outcomes recorded, by action type and outcome (succeeded, failed, refused, rejected, pending_approval, in_doubt).",
		}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recourse_action_provider_duration_seconds",
			Help:    "Time of each provider call an action makes (every file upload and the dispute update together for evidence), by action type.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"type"}),
		requested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recourse_action_approvals_requested_total",
			Help: "Actions sent to a supervisor for approval, by action type.",
		}, []string{"type"}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recourse_action_approvals_decided_total",
			Help: "Supervisor decisions on pending actions, by action type and decision (approved, rejected).",
		}, []string{"type", "decision"}),
	}
	// Every type starts at zero, so rate() and alerts see a series from
	// the first scrape rather than from the first occurrence.
	for _, t := range Types() {
		for _, o := range []string{OutcomeSucceeded, OutcomeFailed, OutcomeRefused, OutcomeRejected, OutcomePendingApproval, OutcomeInDoubt} {
			m.outcomes.WithLabelValues(string(t), o)
		}
		m.requested.WithLabelValues(string(t))
		m.decided.WithLabelValues(string(t), "approved")
		m.decided.WithLabelValues(string(t), "rejected")
	}
	return m
}

func (m *actionMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.outcomes, m.duration, m.requested, m.decided, m.executing}
}

// executingCollector reads the executing actions at scrape time, with a
// short timeout: an action the resumer cannot finish (the provider down for
// long, a bug) shows as an age that keeps growing.
type executingCollector struct {
	s             *Service
	count, oldest *prometheus.Desc
}

func (c *executingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.count; ch <- c.oldest }

func (c *executingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, age, err := c.s.executing(ctx)
	if err != nil {
		c.s.log.Warn("actions: executing-action metrics unavailable", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age.Seconds())
}

// executing counts the executing actions and says how long the oldest has
// been executing: since its approval, else its request (updated_at moves
// with every attempt, so it would hide an action retried forever).
func (s *Service) executing(ctx context.Context) (int64, time.Duration, error) {
	var n int64
	q := s.db.WithContext(ctx).Model(&row{}).Where("status = ?", string(StatusExecuting))
	if err := q.Count(&n).Error; err != nil {
		return 0, 0, fmt.Errorf("count executing actions: %w", err)
	}
	if n == 0 {
		return 0, 0, nil
	}
	var r row
	err := s.db.WithContext(ctx).Where("status = ?", string(StatusExecuting)).Order("COALESCE(decided_at, created_at)").Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, 0, nil // finished between the two reads
	}
	if err != nil {
		return 0, 0, fmt.Errorf("oldest executing action: %w", err)
	}
	since := r.CreatedAt
	if r.DecidedAt != nil {
		since = *r.DecidedAt
	}
	return n, max(s.clock.Now().Sub(since), 0), nil
}

// outcome counts one recorded outcome of an action of type t.
func (m *actionMetrics) outcome(t Type, outcome string) {
	m.outcomes.WithLabelValues(string(t), outcome).Inc()
	if outcome == OutcomePendingApproval {
		m.requested.WithLabelValues(string(t)).Inc()
	}
}

// decision counts a supervisor's decision on an action of type t.
func (m *actionMetrics) decision(t Type, approved bool) {
	d := "rejected"
	if approved {
		d = "approved"
	}
	m.decided.WithLabelValues(string(t), d).Inc()
}

// providerCall observes the duration of one provider call since start.
func (m *actionMetrics) providerCall(t Type, start time.Time) {
	m.duration.WithLabelValues(string(t)).Observe(time.Since(start).Seconds())
}

// Collectors returns the package's Prometheus collectors
// (recourse_actions_total, recourse_action_provider_duration_seconds,
// recourse_action_approvals_requested_total,
// recourse_action_approvals_decided_total, and the scrape-time gauges
// recourse_actions_executing and
// recourse_actions_executing_oldest_age_seconds), for wiring to register on
// the service's registry.
func (s *Service) Collectors() []prometheus.Collector { return s.metrics.collectors() }
