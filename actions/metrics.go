package actions

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
}

func newActionMetrics() *actionMetrics {
	m := &actionMetrics{
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
	return []prometheus.Collector{m.outcomes, m.duration, m.requested, m.decided}
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
// recourse_action_approvals_requested_total and
// recourse_action_approvals_decided_total), for wiring to register on the
// service's registry.
func (s *Service) Collectors() []prometheus.Collector { return s.metrics.collectors() }
