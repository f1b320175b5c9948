package web

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
	_ "time/tzdata" // time zones for recourse_tz even where the system has no zoneinfo

	"github.com/recourse-hq/recourse/cases"
)

var funcs = template.FuncMap{
	"deref": func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	},
	"when":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"deref2": func(t *time.Time) time.Time { return *t },
	"iso":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"money": func(amount *int64, currency *string) string {
		if amount == nil {
			return ""
		}
		cur := ""
		if currency != nil {
			cur = *currency
		}
		return money(*amount, cur)
	},
	"moneyOf":  money,
	"humanize": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
}

// zeroDecimal currencies have no minor unit.
var zeroDecimal = map[string]bool{"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true, "krw": true,
	"mga": true, "pyg": true, "rwf": true, "ugx": true, "vnd": true, "vuv": true, "xaf": true, "xof": true, "xpf": true}

// money writes integer minor units in their currency: 1250 usd → "12.50 USD".
func money(amount int64, currency string) string {
	cur := strings.ToUpper(currency)
	if zeroDecimal[strings.ToLower(currency)] {
		return strings.TrimSpace(fmt.Sprintf("%d %s", amount, cur))
	}
	sign := ""
	if amount < 0 {
		sign, amount = "-", -amount
	}
	return strings.TrimSpace(fmt.Sprintf("%s%d.%02d %s", sign, amount/100, amount%100, cur))
}

// slaClock says how long case c has left on its running SLA clock.
type slaClock struct {
	Text  string
	Class string // sla-ok, sla-soon, sla-breached, sla-paused, sla-stopped
	Due   *time.Time
}

func slaOf(c cases.Case, now time.Time, dueSoon time.Duration) slaClock {
	if !c.IsOpen() {
		return slaClock{Text: "—", Class: "sla-stopped"}
	}
	if c.SLA.PausedAt != nil {
		return slaClock{Text: "paused", Class: "sla-paused"}
	}
	due := c.SLA.NextDue()
	left := due.Sub(now)
	switch {
	case c.SLA.Breached || left < 0:
		return slaClock{Text: "breached " + span(-left) + " ago", Class: "sla-breached", Due: &due}
	case left < dueSoon:
		return slaClock{Text: span(left) + " left", Class: "sla-soon", Due: &due}
	default:
		return slaClock{Text: span(left) + " left", Class: "sla-ok", Due: &due}
	}
}

// span writes d roughly, in its two largest units: "3d 4h", "2h 15m", "5m".
func span(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	days := int(d / (24 * time.Hour))
	h := int(d/time.Hour) % 24
	m := int(d/time.Minute) % 60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	default:
		return fmt.Sprintf("%dm", m)
	}
}

// TZCookie is the cookie console.js sets to the browser's IANA time zone
// (Intl.DateTimeFormat().resolvedOptions().timeZone); pages show times in it.
const TZCookie = "recourse_tz"

// zoneName returns the time zone the request's recourse_tz cookie names,
// "UTC" when there is none or it is not a zone time.LoadLocation knows.
func zoneName(r *http.Request) (string, *time.Location) {
	ck, err := r.Cookie(TZCookie)
	if err != nil || ck.Value == "" || len(ck.Value) > 100 {
		return "UTC", time.UTC
	}
	name, err := url.QueryUnescape(ck.Value)
	if err != nil || name == "" || name == "Local" {
		return "UTC", time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return "UTC", time.UTC
	}
	return name, loc
}

// zonedFuncs are the template helpers whose output depends on the viewer's
// time zone; they replace the UTC ones of funcs for a request in loc.
func zonedFuncs(loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"when": func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04 MST") },
	}
}

// templatesIn returns the console's templates with times shown in the
// request's time zone, one parsed set per zone seen (at most the zones
// time.LoadLocation knows), cloned from a set never executed.
func (con *Console) templatesIn(r *http.Request) *template.Template {
	name, loc := zoneName(r)
	if name == "UTC" || con.zoned == nil {
		return con.tmpl
	}
	if t, ok := con.byZone.Load(name); ok {
		return t.(*template.Template)
	}
	t, err := con.zoned.Clone()
	if err != nil {
		con.opt.Log.Error("console: clone templates for a time zone", "zone", name, "err", err)
		return con.tmpl
	}
	t.Funcs(zonedFuncs(loc))
	actual, _ := con.byZone.LoadOrStore(name, t)
	return actual.(*template.Template)
}
