package web

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/internal/events"
	"github.com/recourse-hq/recourse/notifications"
)

// notificationTab is one status filter of the deliveries list.
type notificationTab struct {
	Status notifications.Status // empty: every delivery
	Label  string
	Empty  string
}

var notificationTabs = []notificationTab{
	{"", "All", "No notification has been routed yet. Destinations and rules are in the policy file's notifications section."},
	{notifications.StatusPending, "Pending", "Nothing is waiting to be sent."},
	{notifications.StatusSent, "Sent", "No notification has been delivered yet."},
	{notifications.StatusFailed, "Failed", "No notification has failed after its last attempt. Nothing to replay."},
}

type notificationsPage struct {
	page
	Tabs        []notificationTab
	Tab         notificationTab
	Destination string
	Deliveries  []deliveryRow
	Next        template.URL
	CanReplay   bool
	// Back is this list's query, where a replay returns to.
	Back string
}

// deliveryRow is a delivery with what its event is about: a case page, or
// for a dead-lettered webhook event, that event's admin page.
type deliveryRow struct {
	notifications.Delivery
	About, AboutURL string
}

func rowOf(d notifications.Delivery) deliveryRow {
	r := deliveryRow{Delivery: d}
	switch {
	case d.Subject == "":
	case d.EventType == events.TypeWebhookDeadLettered:
		r.About, r.AboutURL = "event "+d.Subject, "/admin/webhooks/"+url.PathEscape(d.Subject)
	default:
		r.About, r.AboutURL = d.Subject, "/cases/"+url.PathEscape(d.Subject)
	}
	return r
}

var notificationNotices = map[string]string{
	"replayed": "Replayed: the notification is pending again with a fresh set of attempts; the sender picks it up at its next poll.",
}

// adminNotifications is GET /admin/notifications?status=&destination=:
// deliveries newest first, a page at a time, as GET /api/v1/notifications
// (notifications.Store.List).
func (con *Console) adminNotifications(c echo.Context) error {
	return con.showNotifications(c, http.StatusOK, c.QueryParams(), nil)
}

func (con *Console) showNotifications(c echo.Context, status int, q url.Values, failure error) error {
	if con.opt.Notifications == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "Notifications are not available on this server.")
	}
	pg := notificationsPage{page: con.basePage(c, "Notifications"), Tabs: notificationTabs, Tab: notificationTabs[0],
		Destination: strings.TrimSpace(q.Get("destination"))}
	pg.CanReplay = pg.CanDo(auth.PermNotificationsReplay)
	pg.Notice = notificationNotices[q.Get("done")]
	known := false
	for _, t := range notificationTabs {
		if string(t.Status) == q.Get("status") {
			pg.Tab, known = t, true
		}
	}
	keep := url.Values{}
	if pg.Tab.Status != "" {
		keep.Set("status", string(pg.Tab.Status))
	}
	if pg.Destination != "" {
		keep.Set("destination", pg.Destination)
	}
	pg.Back = keep.Encode()
	f := notifications.Filter{Status: pg.Tab.Status, Destination: pg.Destination}
	if !known {
		// The store's own refusal (EINVALID invalid_status), inline.
		f.Status = notifications.Status(q.Get("status"))
	}
	if failure != nil {
		status = con.withError(c, &pg.page, failure)
		pg.Notice = ""
	}
	list, err := con.opt.Notifications.List(c.Request().Context(), f, adminPageRequest(c, 50))
	if err != nil {
		return con.render(c, con.withError(c, &pg.page, err), "admin_notifications.html", pg)
	}
	for _, d := range list.Data {
		pg.Deliveries = append(pg.Deliveries, rowOf(d))
	}
	if list.NextCursor != nil {
		next := url.Values{}
		for k, v := range keep {
			next[k] = v
		}
		next.Set("cursor", *list.NextCursor)
		pg.Next = template.URL("/admin/notifications?" + next.Encode())
	}
	return con.render(c, status, "admin_notifications.html", pg)
}

// adminReplayNotification is POST /admin/notifications/:id/replay: a
// failed delivery back to pending through notifications.Store.Replay, the
// code behind POST /api/v1/notifications/{id}/replay (audited as
// notification.replay, as the signed-in user). The form's back field is
// the list to return to; a refusal (409 not_failed, 404) is shown on it.
func (con *Console) adminReplayNotification(c echo.Context) error {
	if con.opt.Notifications == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "Notifications are not available on this server.")
	}
	back, err := url.ParseQuery(c.FormValue("back"))
	if err != nil {
		back = url.Values{}
	}
	for k := range back {
		if k != "status" && k != "destination" {
			back.Del(k)
		}
	}
	if _, err := con.opt.Notifications.Replay(c.Request().Context(), c.Param("id"), con.opt.Clock.Now()); err != nil {
		return con.showNotifications(c, http.StatusOK, back, err)
	}
	back.Set("done", "replayed")
	return c.Redirect(http.StatusSeeOther, "/admin/notifications?"+back.Encode())
}
