package reports

import (
	"github.com/prometheus/client_golang/prometheus"
)

// newDuration is recourse_report_duration_seconds{report}: how long each
// report took to compute (successful or not), exports included.
func newDuration() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "recourse_report_duration_seconds",
		Help:    "Time to compute a report (GET /api/v1/reports/{name}), by report.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"report"})
}
