package cases

import (
	"math/rand/v2"
	"testing"
	"time"
)

// A WorkMeter measures exactly what Calendar.Between does, inside its
// window and outside it, across weekends, holidays and a daylight-saving
// change.
func TestWorkMeterMatchesBetween(t *testing.T) {
	c := &Calendar{TimeZone: "Europe/Dublin", Hours: map[string]string{"mon": "09:00-18:00", "tue": "09:00-12:00,13:00-18:00",
		"wed": "09:00-18:00", "thu": "09:00-18:00", "fri": "09:00-17:00", "sat": "10:00-14:00"}, Holidays: []string{"2026-03-17", "2026-04-06"}}
	if err := c.compile(); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	m := c.Meter(from, to)
	r := rand.New(rand.NewPCG(1, 2))
	span := to.Sub(from)
	for i := 0; i < 5000; i++ {
		a := from.Add(time.Duration(r.Int64N(int64(span))) - 5*24*time.Hour) // some before the window
		b := a.Add(time.Duration(r.Int64N(int64(20 * 24 * time.Hour))))
		if i%10 == 0 {
			b = a.Add(-time.Hour)
		}
		if got, want := m.Between(a, b), c.Between(a, b); got != want {
			t.Fatalf("Between(%s, %s): meter %s, calendar %s", a, b, got, want)
		}
	}
}
