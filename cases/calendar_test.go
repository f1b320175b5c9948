package cases

import (
	"strings"
	"testing"
	"time"
)

func dublin(t *testing.T) *Calendar {
	t.Helper()
	c := &Calendar{TimeZone: "Europe/Dublin", Hours: map[string]string{
		"mon": "09:00-17:00", "tue": "09:00-17:00", "wed": "09:00-12:00, 13:00-17:00", "thu": "09:00-17:00", "fri": "09:00-17:00"},
		Holidays: []string{"2026-12-25"}}
	if err := c.compile(); err != nil {
		t.Fatal(err)
	}
	return c
}

func at(t *testing.T, s string) time.Time {
	t.Helper()
	loc, _ := time.LoadLocation("Europe/Dublin")
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCalendarAdd(t *testing.T) {
	t.Parallel()
	c := dublin(t)
	for _, tc := range []struct {
		from string
		d    time.Duration
		want string
	}{
		{"2026-12-01 10:00", 2 * time.Hour, "2026-12-01 12:00"},           // Tuesday, inside hours
		{"2026-12-01 16:00", time.Hour, "2026-12-01 17:00"},               // exactly to closing
		{"2026-12-01 16:00", time.Hour + time.Minute, "2026-12-02 09:01"}, // one minute past closing: next morning
		{"2026-12-01 07:00", time.Hour, "2026-12-01 10:00"},               // before opening
		{"2026-12-01 17:00", time.Minute, "2026-12-02 09:01"},             // at closing
		{"2026-12-02 11:00", 2 * time.Hour, "2026-12-02 14:00"},           // over the Wednesday lunch break
		{"2026-12-04 16:00", 4 * time.Hour, "2026-12-07 12:00"},           // Friday → over the weekend → Monday
		{"2026-12-05 12:00", time.Hour, "2026-12-07 10:00"},               // from Saturday
		{"2026-12-24 16:00", 2 * time.Hour, "2026-12-28 10:00"},           // Thursday → holiday Friday → weekend → Monday
		{"2026-12-01 10:00", 0, "2026-12-01 10:00"},
	} {
		if got := c.Add(at(t, tc.from), tc.d); !got.Equal(at(t, tc.want)) {
			t.Errorf("Add(%s, %s) = %s, want %s", tc.from, tc.d, got.In(c.loc).Format("Mon 2006-01-02 15:04"), tc.want)
		}
	}
}

func TestCalendarBetween(t *testing.T) {
	t.Parallel()
	c := dublin(t)
	for _, tc := range []struct {
		from, to string
		want     time.Duration
	}{
		{"2026-12-01 10:00", "2026-12-01 12:00", 2 * time.Hour},
		{"2026-12-04 16:00", "2026-12-07 10:00", 2 * time.Hour},  // Friday 1 h + Monday 1 h
		{"2026-12-24 09:00", "2026-12-28 09:00", 8 * time.Hour},  // only Thursday: the 25th is a holiday
		{"2026-12-02 09:00", "2026-12-02 17:00", 7 * time.Hour},  // Wednesday's lunch hour is not working time
		{"2026-12-05 00:00", "2026-12-06 23:59", 0},              // a weekend
		{"2026-12-01 12:00", "2026-12-01 10:00", 0},              // backwards
		{"2026-11-30 00:00", "2026-12-07 00:00", 39 * time.Hour}, // a full week: 4×8 + 7
	} {
		if got := c.Between(at(t, tc.from), at(t, tc.to)); got != tc.want {
			t.Errorf("Between(%s, %s) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
}

// Working hours are wall-clock times in the zone: across the spring DST
// change an 8-hour Monday is still 09:00–17:00 local.
func TestCalendarDST(t *testing.T) {
	t.Parallel()
	c := dublin(t)
	// Friday 27 March 2026 16:00 + 2 h → Monday 30 March (after the clocks went forward on the 29th) 10:00 local.
	if got := c.Add(at(t, "2026-03-27 16:00"), 2*time.Hour); !got.Equal(at(t, "2026-03-30 10:00")) {
		t.Fatalf("over DST: %s", got.In(c.loc))
	}
	if got := c.Between(at(t, "2026-03-27 16:00"), at(t, "2026-03-30 10:00")); got != 2*time.Hour {
		t.Fatalf("Between over DST = %s", got)
	}
}

func TestCalendarCompileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c    Calendar
		want string
	}{
		{Calendar{TimeZone: "Mars/Olympus", Hours: map[string]string{"mon": "09:00-17:00"}}, "time zone"},
		{Calendar{TimeZone: "", Hours: map[string]string{"mon": "09:00-17:00"}}, "time zone"},
		{Calendar{TimeZone: "UTC", Hours: map[string]string{"monday": "09:00-17:00"}}, "weekday"},
		{Calendar{TimeZone: "UTC", Hours: map[string]string{"mon": "17:00-09:00"}}, "end after the start"},
		{Calendar{TimeZone: "UTC", Hours: map[string]string{"mon": "09:00-09:00"}}, "end after the start"},
		{Calendar{TimeZone: "UTC", Hours: map[string]string{"mon": "9-5"}}, "HH:MM"},
		{Calendar{TimeZone: "UTC", Hours: map[string]string{"mon": "09:00-13:00,12:00-17:00"}}, "overlap"},
		{Calendar{TimeZone: "UTC", Hours: map[string]string{}}, "no working time"},
		{Calendar{TimeZone: "UTC", Hours: map[string]string{"mon": "09:00-17:00"}, Holidays: []string{"25/12/2026"}}, "not a date"},
	} {
		err := tc.c.compile()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.c, err, tc.want)
		}
	}
	ok := Calendar{TimeZone: "UTC", Hours: map[string]string{"mon": "00:00-24:00", "tue": "09:00-12:00,12:00-17:00"}}
	if err := ok.compile(); err != nil {
		t.Fatalf("a full day and touching periods: %v", err)
	}
}

// A business-hours kind's due times count the team's working time; a pause
// moves them by the working time spent paused, not the wall-clock time.
func TestSLABusinessHours(t *testing.T) {
	t.Parallel()
	p := DefaultSLAPolicy()
	ks := p.Kinds[KindBillingInquiry]
	ks.BusinessHours = true
	ks.Targets = map[Priority]SLATarget{PriorityNormal: {FirstResponse: Duration(4 * time.Hour), Resolution: Duration(16 * time.Hour)}}
	p.Kinds[KindBillingInquiry] = ks
	p.Calendars = map[string]*Calendar{DefaultCalendar: {TimeZone: "Europe/Dublin", Hours: map[string]string{
		"mon": "09:00-17:00", "tue": "09:00-17:00", "wed": "09:00-17:00", "thu": "09:00-17:00", "fri": "09:00-17:00"},
		Holidays: []string{"2026-12-25"}}}
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	team := mustLifecycle(KindBillingInquiry).Team
	// Thursday 24 Dec 15:00: first response 4 working hours later is Monday 28th 11:00
	// (2 h Thursday, Friday is a holiday); resolution 16 h later is Tuesday 29th 15:00.
	fr, res := p.dueTimes(KindBillingInquiry, team, PriorityNormal, at(t, "2026-12-24 15:00"), nil)
	if !fr.Equal(at(t, "2026-12-28 11:00")) || !res.Equal(at(t, "2026-12-29 15:00")) {
		t.Fatalf("due %s / %s", fr.In(time.UTC), res.In(time.UTC))
	}
	// Around the clock for a kind without business_hours.
	fr2, _ := p.dueTimes(KindRefundRequest, team, PriorityNormal, at(t, "2026-12-24 15:00"), nil)
	if want := at(t, "2026-12-24 15:00").Add(p.Kinds[KindRefundRequest].Targets[PriorityNormal].FirstResponse.D()); !fr2.Equal(want) {
		t.Fatalf("wall-clock kind: %s, want %s", fr2, want)
	}

	// Paused from Friday 16:00 to Monday 10:00 (2 working hours): due times move by 2 working hours.
	c := Case{Kind: KindBillingInquiry, Team: team, State: mustLifecycle(KindBillingInquiry).Initial, CreatedAt: at(t, "2026-12-01 09:00")}
	c.SLA.FirstResponseDue, c.SLA.ResolutionDue = at(t, "2026-12-07 12:00"), at(t, "2026-12-08 16:00")
	paused := at(t, "2026-12-04 16:00")
	c.SLA.PausedAt = &paused
	p.followRole(&c, at(t, "2026-12-07 10:00"))
	if c.SLA.Role != SLARunning {
		t.Fatalf("role %s", c.SLA.Role)
	}
	if !c.SLA.FirstResponseDue.Equal(at(t, "2026-12-07 14:00")) || !c.SLA.ResolutionDue.Equal(at(t, "2026-12-09 10:00")) {
		t.Fatalf("after the pause: %s / %s", c.SLA.FirstResponseDue.In(time.UTC), c.SLA.ResolutionDue.In(time.UTC))
	}
	if c.SLA.PausedTotal.D() != 66*time.Hour {
		t.Fatalf("paused total %s (wall clock)", c.SLA.PausedTotal.D())
	}

	bad := p
	bad.Calendars = map[string]*Calendar{"nobody": {TimeZone: "UTC", Hours: map[string]string{"mon": "09:00-17:00"}}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "neither a team") {
		t.Fatalf("unknown calendar name: %v", err)
	}
	bad.Calendars = nil
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "no calendar") {
		t.Fatalf("business_hours without a calendar: %v", err)
	}
}
