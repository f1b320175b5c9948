package cases

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// caseMetrics are the package's collectors.
type caseMetrics struct {
	breaches *prometheus.CounterVec
	open     *openCollector
}

func newCaseMetrics(s *Service) *caseMetrics {
	return &caseMetrics{
		breaches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recourse_case_sla_breaches_total",
			Help: "SLA breaches marked by the sweeper, by case kind and SLA (first_response, resolution).",
		}, []string{"kind", "sla"}),
		open: &openCollector{s: s,
			open:     prometheus.NewDesc("recourse_cases_open", "Open cases by kind.", []string{"kind"}, nil),
			breached: prometheus.NewDesc("recourse_cases_open_breached", "Open cases with a breached SLA, by kind.", []string{"kind"}, nil),
		},
	}
}

func (m *caseMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.breaches, m.open}
}

// openCollector counts open cases at scrape time, with a short timeout.
type openCollector struct {
	s              *Service
	open, breached *prometheus.Desc
}

func (c *openCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.open; ch <- c.breached }

func (c *openCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.s.st.openCounts(ctx, c.s.db.Gorm)
	if err != nil {
		c.s.log.Warn("cases: open-case metrics unavailable", "err", err)
		return
	}
	open := map[string]float64{}
	breached := map[string]float64{}
	for _, r := range rows {
		open[r.Kind] += float64(r.N)
		if r.Breached {
			breached[r.Kind] += float64(r.N)
		}
	}
	for _, k := range Kinds() {
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, open[string(k)], string(k))
		ch <- prometheus.MustNewConstMetric(c.breached, prometheus.GaugeValue, breached[string(k)], string(k))
	}
}
