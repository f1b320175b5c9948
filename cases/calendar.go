package cases

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Calendar is a team's working time: a time zone, working hours per
// weekday and holidays. SLA targets of kinds marked business_hours count
// only this time. In the policy file:
//
//	calendars:
//	  payments:
//	    time_zone: Europe/Dublin
//	    hours: {mon: "09:00-18:00", tue: "09:00-18:00", wed: "09:00-12:00,13:00-18:00", …}
//	    holidays: ["2026-12-25", "2026-12-26"]
//
// A weekday left out is closed. Times are wall-clock times in the zone, so
// a daylight-saving change moves them with the office.
type Calendar struct {
	TimeZone string            `json:"time_zone" yaml:"time_zone"`
	Hours    map[string]string `json:"hours" yaml:"hours"`
	Holidays []string          `json:"holidays,omitempty" yaml:"holidays,omitempty"`

	loc      *time.Location
	week     [7][]span // by time.Weekday
	holidays map[string]bool
}

// span is a working period of a day, in minutes from midnight.
type span struct{ from, to int }

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// compile checks c and prepares it for Add and Between.
func (c *Calendar) compile() error {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil || c.TimeZone == "" {
		return fmt.Errorf("time_zone %q is not an IANA time zone (e.g. Europe/Dublin)", c.TimeZone)
	}
	c.loc = loc
	c.week = [7][]span{}
	working := false
	for day, hours := range c.Hours {
		wd, ok := weekdays[strings.ToLower(day)]
		if !ok {
			return fmt.Errorf("hours: %q is not a weekday (mon … sun)", day)
		}
		var spans []span
		for _, part := range strings.Split(hours, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			a, b, ok := strings.Cut(part, "-")
			from, err1 := clockMinutes(a)
			to, err2 := clockMinutes(b)
			if !ok || err1 != nil || err2 != nil || to <= from {
				return fmt.Errorf("hours %s: %q must be HH:MM-HH:MM with the end after the start", day, part)
			}
			spans = append(spans, span{from, to})
		}
		sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
		for i := 1; i < len(spans); i++ {
			if spans[i].from < spans[i-1].to {
				return fmt.Errorf("hours %s: periods overlap", day)
			}
		}
		c.week[wd] = spans
		working = working || len(spans) > 0
	}
	if !working {
		return fmt.Errorf("hours: no working time in the week")
	}
	c.holidays = map[string]bool{}
	for _, h := range c.Holidays {
		if _, err := time.Parse(time.DateOnly, h); err != nil {
			return fmt.Errorf("holidays: %q is not a date (YYYY-MM-DD)", h)
		}
		c.holidays[h] = true
	}
	return nil
}

func clockMinutes(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		if strings.TrimSpace(s) == "24:00" {
			return 24 * 60, nil
		}
		return 0, err
	}
	return t.Hour()*60 + t.Minute(), nil
}

// maxDays bounds the walk over days (a calendar of one working minute a
// year still ends).
const maxDays = 3 * 366

// periods calls fn with each working period, in order, from the day of t
// on; fn returns false to stop.
func (c *Calendar) periods(t time.Time, fn func(from, to time.Time) bool) {
	local := t.In(c.loc)
	y, m, d := local.Date()
	for i := 0; i < maxDays; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, c.loc)
		if c.holidays[day.Format(time.DateOnly)] {
			continue
		}
		for _, s := range c.week[day.Weekday()] {
			from := time.Date(day.Year(), day.Month(), day.Day(), s.from/60, s.from%60, 0, 0, c.loc)
			to := time.Date(day.Year(), day.Month(), day.Day(), s.to/60, s.to%60, 0, 0, c.loc)
			if !fn(from, to) {
				return
			}
		}
	}
}

// Add returns the moment d of working time after t.
func (c *Calendar) Add(t time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return t
	}
	out := t
	c.periods(t, func(from, to time.Time) bool {
		if !to.After(t) {
			return true
		}
		if from.Before(t) {
			from = t
		}
		if avail := to.Sub(from); avail >= d {
			out = from.Add(d)
			return false
		} else {
			d -= avail
		}
		return true
	})
	return out.UTC()
}

// Between returns the working time between a and b (0 when b is not after a).
func (c *Calendar) Between(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	var total time.Duration
	c.periods(a, func(from, to time.Time) bool {
		if !from.Before(b) {
			return false
		}
		if from.Before(a) {
			from = a
		}
		if to.After(b) {
			to = b
		}
		if to.After(from) {
			total += to.Sub(from)
		}
		return true
	})
	return total
}

// TeamCalendar returns the working-time calendar of team — its own, else
// the "default" one — whatever its kinds count in, or nil when the policy
// has neither. Reports measure business-hours durations with it.
func (p SLAPolicy) TeamCalendar(team Team) *Calendar {
	c, ok := p.Calendars[string(team)]
	if !ok {
		c = p.Calendars[DefaultCalendar]
	}
	if c == nil || c.loc == nil {
		return nil
	}
	return c
}

// WorkMeter measures working time like Calendar.Between, fast, for many
// pairs of times inside one window: the calendar's periods in the window
// are listed once with the working time before each, so each Between is
// two binary searches. Reports use it to measure thousands of cases.
type WorkMeter struct {
	cal      *Calendar
	from, to time.Time
	starts   []time.Time
	ends     []time.Time
	before   []time.Duration // working time from the window's start to starts[i]
}

// Meter returns a WorkMeter for times in [from, to]; pairs outside it are
// measured by Between.
func (c *Calendar) Meter(from, to time.Time) *WorkMeter {
	m := &WorkMeter{cal: c, from: from, to: to}
	var total time.Duration
	c.periods(from, func(a, b time.Time) bool {
		if !a.Before(to) {
			return false
		}
		if !b.After(from) {
			return true
		}
		m.starts = append(m.starts, a)
		m.ends = append(m.ends, b)
		m.before = append(m.before, total)
		total += b.Sub(a)
		return true
	})
	return m
}

// worked is the working time from the window's start (more exactly, from
// the first period's start) to t.
func (m *WorkMeter) worked(t time.Time) time.Duration {
	i := sort.Search(len(m.starts), func(i int) bool { return m.starts[i].After(t) }) - 1
	if i < 0 {
		return 0
	}
	d := t.Sub(m.starts[i])
	if p := m.ends[i].Sub(m.starts[i]); d > p {
		d = p
	}
	return m.before[i] + d
}

// Between returns the working time between a and b, as Calendar.Between.
func (m *WorkMeter) Between(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	if a.Before(m.from) || b.After(m.to) {
		return m.cal.Between(a, b)
	}
	return m.worked(b) - m.worked(a)
}
