// Package metrics holds the service's Prometheus collectors, on a registry of
// its own (no package-level state) so tests can boot many services at once.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is every collector the service exports.
type Metrics struct {
	Registry *prometheus.Registry

	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec

	WebhookReceived  prometheus.Counter
	WebhookDuplicate prometheus.Counter
	WebhookRejected  *prometheus.CounterVec
	WebhookProcessed *prometheus.CounterVec
	WebhookFailed    *prometheus.CounterVec
	WebhookDead      prometheus.Counter
	WebhookReplayed  prometheus.Counter
	IntakeBatchSize  prometheus.Histogram
	// WebhookBatchReplayed counts worker batches rolled back and applied
	// again one event at a time (a failing event, a deadlock, a lost lease).
	WebhookBatchReplayed prometheus.Counter

	// RateLimited counts requests refused with 429 by an abuse limit, by
	// scope (token, ip, console, stripe, escalation).
	RateLimited *prometheus.CounterVec
}

// InboxStats reports the inbox backlog: pending events and the age of the
// oldest one. It is called at scrape time.
type InboxStats func(ctx context.Context) (pending int64, oldest time.Duration, err error)

// New registers every collector on a fresh registry.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recourse_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "recourse_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		WebhookReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recourse_webhook_events_received_total", Help: "Verified webhook events stored in the inbox for the first time.",
		}),
		WebhookDuplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recourse_webhook_events_duplicate_total", Help: "Verified webhook deliveries of events already in the inbox.",
		}),
		WebhookRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recourse_webhook_events_rejected_total", Help: "Webhook deliveries refused, by reason.",
		}, []string{"reason"}),
		WebhookProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recourse_webhook_events_processed_total", Help: "Inbox events finished, by outcome (processed or ignored).",
		}, []string{"outcome"}),
		WebhookFailed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recourse_webhook_events_failed_total", Help: "Inbox event attempts that failed, by event type.",
		}, []string{"type"}),
		WebhookDead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recourse_webhook_events_dead_total", Help: "Inbox events dead-lettered after their last attempt.",
		}),
		WebhookReplayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recourse_webhook_events_replayed_total", Help: "Dead-lettered events put back to pending by an operator.",
		}),
		IntakeBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "recourse_webhook_intake_batch_size", Help: "Deliveries committed together by the intake's group commit.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		}),
		WebhookBatchReplayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recourse_webhook_worker_batches_replayed_total", Help: "Worker batches rolled back and applied again one event at a time.",
		}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recourse_http_rate_limited_total", Help: "Requests refused with 429 by a rate limit, by scope (token, ip, console, stripe, escalation).",
		}, []string{"scope"}),
	}
	r.MustRegister(m.HTTPRequests, m.RateLimited, m.HTTPDuration, m.WebhookReceived, m.WebhookDuplicate,
		m.WebhookRejected, m.WebhookProcessed, m.WebhookFailed, m.WebhookDead, m.WebhookReplayed,
		m.IntakeBatchSize, m.WebhookBatchReplayed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// RegisterInbox exports the inbox backlog gauges, read from stats at scrape
// time with a short timeout.
func (m *Metrics) RegisterInbox(stats InboxStats, log *slog.Logger) {
	m.Registry.MustRegister(&inboxCollector{stats: stats, log: log,
		backlog: prometheus.NewDesc("recourse_webhook_inbox_backlog", "Inbox events waiting to be processed.", nil, nil),
		oldest:  prometheus.NewDesc("recourse_webhook_inbox_oldest_age_seconds", "Age of the oldest pending inbox event.", nil, nil),
	})
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

type inboxCollector struct {
	stats           InboxStats
	log             *slog.Logger
	backlog, oldest *prometheus.Desc
}

func (c *inboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.backlog; ch <- c.oldest }

func (c *inboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, age, err := c.stats(ctx)
	if err != nil {
		c.log.Warn("inbox metrics unavailable", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.backlog, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age.Seconds())
}
