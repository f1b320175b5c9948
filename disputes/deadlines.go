package disputes

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/recourse-hq/recourse/cases"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/internal/sweep"
)

// Timeline entry types the deadline sweep writes.
const (
	EntryDeadlineReminder = "deadline_reminder"
	EntryDeadlineMissed   = "deadline_missed"
)

// MarkMissed is the deadline mark of a dispute whose due_by passed while a
// response was awaited; a reminder's mark is ReminderMark(lead).
const MarkMissed = "missed"

// ReminderMark names the mark of the reminder at lead (e.g. "reminder:24h0m0s").
func ReminderMark(lead time.Duration) string { return "reminder:" + lead.String() }

// deadlineBatch is how many cases one query of the sweep reads.
const deadlineBatch = 200

// DeadlineOptions wires a DeadlineSweeper.
type DeadlineOptions struct {
	DB         *db.DB
	Cases      *cases.Service
	Clock      clock.Clock
	Policy     Policy // Reminders are read from it (Normalize()d: longest lead first)
	Logger     *slog.Logger
	Registerer prometheus.Registerer // may be nil
}

// DeadlineSweeper sends a dispute case's deadline reminders and records its
// missed deadline. See Sweep.
type DeadlineSweeper struct {
	db        *db.DB
	cases     *cases.Service
	clock     clock.Clock
	leads     []time.Duration // longest first
	awaiting  []string        // dispute case states that await a response
	log       *slog.Logger
	reminders *prometheus.CounterVec
	missed    prometheus.Counter
}

// NewDeadlineSweeper returns a sweeper; it registers
// recourse_dispute_deadline_reminders_total{lead} and
// recourse_dispute_deadlines_missed_total on opt.Registerer.
func NewDeadlineSweeper(opt DeadlineOptions) (*DeadlineSweeper, error) {
	if opt.DB == nil || opt.Cases == nil {
		return nil, fmt.Errorf("disputes: DeadlineOptions needs DB and Cases")
	}
	p := opt.Policy
	p.Normalize()
	s := &DeadlineSweeper{db: opt.DB, cases: opt.Cases, clock: opt.Clock, log: opt.Logger,
		reminders: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recourse_dispute_deadline_reminders_total",
			Help: "Dispute deadline reminders sent, by lead time."}, []string{"lead"}),
		missed: prometheus.NewCounter(prometheus.CounterOpts{Name: "recourse_dispute_deadlines_missed_total",
			Help: "Dispute evidence deadlines that passed without a response."}),
	}
	for _, l := range p.Reminders {
		s.leads = append(s.leads, l.D())
	}
	if s.clock == nil {
		s.clock = clock.System{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	lc, _ := cases.LifecycleOf(cases.KindDispute)
	s.awaiting = lc.StatesWithRole(cases.SLARunning)
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{s.reminders, s.missed} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("disputes: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// window is one band of due_by times: a case whose due_by is in
// (now+lo, now+hi] gets mark; for the missed band, due_by ≤ now.
type window struct {
	mark   string
	lead   time.Duration
	lo, hi time.Duration
	last   bool // the shortest lead: the case becomes urgent
	missed bool
}

func (s *DeadlineSweeper) windows() []window {
	var out []window
	for i, l := range s.leads {
		w := window{mark: ReminderMark(l), lead: l, hi: l, last: i == len(s.leads)-1}
		if !w.last {
			w.lo = s.leads[i+1]
		}
		out = append(out, w)
	}
	return append(out, window{mark: MarkMissed, missed: true})
}

// Sweep looks at every open dispute case awaiting a response (its SLA clock
// running: not submitted, not closed) with an evidence due_by, and:
//
//   - when the nearest lead time before due_by has passed (due_by − lead ≤
//     now < due_by) and that reminder has not been sent, sends it: a
//     deadline_reminder timeline entry, recourse_dispute_deadline_reminders_total{lead},
//     the priority raised (to urgent at the shortest lead, to at least high
//     before), and a dispute.deadline_reminder event. Only the nearest lead
//     fires: a case first seen with 20 h left gets the 24 h reminder, never
//     the 72 h one as well.
//   - when due_by has passed (due_by ≤ now), records the deadline as missed
//     once: a deadline_missed entry, recourse_dispute_deadlines_missed_total,
//     a dispute.deadline_missed event, and the mark that stats count.
//
// Each mark is made once however many sweepers run: its row in
// dispute_deadline_marks (primary key case + mark) is inserted under the
// case's row lock and a second insert does nothing. It returns how many
// marks it made.
func (s *DeadlineSweeper) Sweep(ctx context.Context) (int, error) {
	now := s.clock.Now().UTC()
	total := 0
	for _, w := range s.windows() {
		var lastDue time.Time
		lastID := ""
		for ctx.Err() == nil {
			cands, err := s.candidates(ctx, now, w, lastDue, lastID)
			if err != nil {
				return total, err
			}
			for _, c := range cands {
				ok, err := s.mark(ctx, c, w, now)
				if err != nil {
					return total, err
				}
				if ok {
					total++
				}
			}
			if len(cands) < deadlineBatch {
				break
			}
			lastDue, lastID = cands[len(cands)-1].DueBy, cands[len(cands)-1].ID
		}
	}
	return total, ctx.Err()
}

type deadlineCandidate struct {
	ID        string
	DisputeID *string
	DueBy     time.Time `gorm:"column:evidence_due_by"`
}

// candidates reads the cases in w's band without w's mark, in (due_by, id)
// order after (lastDue, lastID).
func (s *DeadlineSweeper) candidates(ctx context.Context, now time.Time, w window, lastDue time.Time, lastID string) ([]deadlineCandidate, error) {
	q := s.db.WithContext(ctx).Table("cases").Select("id, dispute_id, evidence_due_by").
		Where("kind = ? AND status = ? AND state IN ? AND evidence_due_by IS NOT NULL", string(cases.KindDispute), string(cases.StatusOpen), s.awaiting)
	if w.missed {
		q = q.Where("evidence_due_by <= ?", now)
	} else {
		q = q.Where("evidence_due_by > ? AND evidence_due_by <= ?", now.Add(w.lo), now.Add(w.hi))
	}
	q = q.Where("NOT EXISTS (SELECT 1 FROM dispute_deadline_marks m WHERE m.case_id = cases.id AND m.mark = ?)", w.mark)
	if lastID != "" {
		q = q.Where("(evidence_due_by > ? OR (evidence_due_by = ? AND id > ?))", lastDue, lastDue, lastID)
	}
	var out []deadlineCandidate
	if err := q.Order("evidence_due_by, id").Limit(deadlineBatch).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("dispute deadline candidates: %w", err)
	}
	return out, nil
}

type deadlineMark struct {
	CaseID    string
	Mark      string
	DisputeID string
	DueBy     time.Time
	At        time.Time
}

func (deadlineMark) TableName() string { return "dispute_deadline_marks" }

// mark makes w's mark on case c in one transaction; false when the case no
// longer qualifies or another sweeper made the mark first.
func (s *DeadlineSweeper) mark(ctx context.Context, cand deadlineCandidate, w window, now time.Time) (bool, error) {
	made := false
	err := s.db.Transact(ctx, func(tx *gorm.DB) error {
		made = false
		c, err := s.cases.GetInTx(ctx, tx, cand.ID)
		if err != nil {
			return err
		}
		if !c.IsOpen() || c.EvidenceDueBy == nil || !c.EvidenceDueBy.Equal(cand.DueBy) || !contains(s.awaiting, c.State) {
			return nil // moved on since the candidate was read
		}
		due := c.EvidenceDueBy.UTC()
		disputeID := c.Links.Dispute
		res := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
			Create(&deadlineMark{CaseID: c.ID, Mark: w.mark, DisputeID: deref(disputeID), DueBy: due, At: now})
		if res.Error != nil {
			return fmt.Errorf("mark %s on case %s: %w", w.mark, c.ID, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil // another sweeper made it
		}
		entry := cases.TimelineEntry{At: now, Actor: cases.SystemActor, ActorType: cases.ActorSystem}
		data := map[string]any{"case_id": c.ID, "dispute_id": deref(disputeID), "due_by": due}
		typ := events.TypeDisputeDeadlineMissed
		var prio cases.Priority
		if w.missed {
			entry.Type = EntryDeadlineMissed
			entry.Summary = "Evidence deadline missed: due " + due.Format(time.RFC3339) + " passed without a response"
		} else {
			typ = events.TypeDisputeDeadlineReminder
			left := due.Sub(now).Truncate(time.Minute)
			entry.Type = EntryDeadlineReminder
			entry.Summary = fmt.Sprintf("Evidence due in %s (%s reminder): due %s", leadDuration(left), leadDuration(w.lead), due.Format(time.RFC3339))
			prio = cases.PriorityHigh
			if w.last {
				prio = cases.PriorityUrgent
			}
			data["lead"] = w.lead.String()
			data["left_seconds"] = int64(due.Sub(now) / time.Second)
		}
		after, err := s.cases.RaiseAndRecord(ctx, tx, c.ID, prio, entry)
		if err != nil {
			return err
		}
		data["priority"] = after.Priority
		// Routing fields for subscribers (notification rules), as events.CaseFacts names them.
		data["kind"], data["team"], data["title"] = after.Kind, after.Team, after.Title
		data["business_line"], data["amount"], data["currency"], data["due_at"] = deref(after.BusinessLine), after.Amount, deref(after.Currency), due
		if _, err := events.Append(ctx, tx, typ, "dispute-deadline/"+c.ID+"/"+w.mark, c.ID, now, data); err != nil {
			return err
		}
		made = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("dispute deadline %s on case %s: %w", w.mark, cand.ID, err)
	}
	if made {
		if w.missed {
			s.missed.Inc()
		} else {
			s.reminders.WithLabelValues(w.lead.String()).Inc()
		}
	}
	return made, nil
}

// Run sweeps now and then every interval until ctx is cancelled, logging
// failures (a failed sweep is retried at the next tick).
func (s *DeadlineSweeper) Run(ctx context.Context, interval time.Duration) {
	sweep.Every(ctx, interval, s.log, "disputes: deadline sweep failed", "disputes: deadline reminders and misses recorded", s.Sweep)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// leadDuration writes a lead time as "23h59m" / "72h".
func leadDuration(d time.Duration) string {
	d = d.Truncate(time.Minute)
	h, m := int64(d/time.Hour), int64((d%time.Hour)/time.Minute)
	if m == 0 {
		return fmt.Sprintf("%dh", h)
	}
	return fmt.Sprintf("%dh%02dm", h, m)
}
