package web

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/recourse-hq/recourse/internal/auth"
	"github.com/recourse-hq/recourse/webhooks"
)

// webhookTab is one status filter of the inbox list.
type webhookTab struct {
	Status webhooks.Status // empty: every event
	Label  string
	Empty  string
}

var webhookTabs = []webhookTab{
	{"", "All", "No webhook events have arrived yet. Point the billing provider's webhooks at /webhooks/stripe with RECOURSE_STRIPE_WEBHOOK_SECRETS set."},
	{webhooks.StatusPending, "Pending", "Nothing is waiting: the worker has handled every event that arrived."},
	{webhooks.StatusProcessed, "Processed", "No event has been processed yet."},
	{webhooks.StatusIgnored, "Ignored", "No event was ignored (types Recourse does not handle land here)."},
	{webhooks.StatusDead, "Dead letters", "No dead letters: no event has run out of attempts. Nothing to replay."},
}

type webhooksPage struct {
	page
	Tabs   []webhookTab
	Tab    webhookTab
	Events []webhooks.Record
	Next   string
	// Export downloads every event of the tab as CSV.
	Export string
}

// adminWebhooks is GET /admin/webhooks?status=: the inbox newest first,
// a page at a time, as GET /api/v1/webhook-events.
func (con *Console) adminWebhooks(c echo.Context) error {
	if con.opt.Inbox == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The webhook inbox is not available on this server.")
	}
	pg := webhooksPage{page: con.basePage(c, "Webhook events"), Tabs: webhookTabs, Tab: webhookTabs[0]}
	status := http.StatusOK
	if s := c.QueryParam("status"); s != "" {
		st, err := webhooks.ParseStatus(s)
		if err != nil {
			return con.render(c, con.withError(c, &pg.page, err), "admin_webhooks.html", pg)
		}
		for _, t := range webhookTabs {
			if t.Status == st {
				pg.Tab = t
			}
		}
	}
	pg.Export = "/export/webhook-events.csv"
	if pg.Tab.Status != "" {
		pg.Export += "?" + url.Values{"status": {string(pg.Tab.Status)}}.Encode()
	}
	list, err := con.opt.Inbox.List(c.Request().Context(), webhooks.Filter{Status: pg.Tab.Status}, adminPageRequest(c, 50))
	if err != nil {
		status = con.withError(c, &pg.page, err)
	} else {
		pg.Events = list.Data
		if list.NextCursor != nil {
			pg.Next = *list.NextCursor
		}
	}
	return con.render(c, status, "admin_webhooks.html", pg)
}

type webhookPage struct {
	page
	Event     webhooks.Record
	CanReplay bool
}

var webhookNotices = map[string]string{
	"replayed": "Replayed: the event is pending again with a fresh set of attempts; the worker picks it up.",
}

// adminWebhook is GET /admin/webhooks/:id: one event without its payload.
func (con *Console) adminWebhook(c echo.Context) error {
	return con.showWebhook(c, http.StatusOK, nil)
}

func (con *Console) showWebhook(c echo.Context, status int, failure error) error {
	if con.opt.Inbox == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The webhook inbox is not available on this server.")
	}
	rec, err := con.opt.Inbox.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return con.fail(c, err)
	}
	rec.Payload = nil // never rendered
	pg := webhookPage{page: con.basePage(c, "Webhook event "+rec.EventID), Event: rec}
	pg.CanReplay = pg.CanDo(auth.PermWebhookEventsReplay) && rec.Status == webhooks.StatusDead
	pg.Notice = webhookNotices[c.QueryParam("done")]
	if failure != nil {
		status = con.withError(c, &pg.page, failure)
		pg.Notice = ""
	}
	return con.render(c, status, "admin_webhook.html", pg)
}

// adminReplay is POST /admin/webhooks/:id/replay: the dead-lettered event
// back to pending through webhooks.Inbox.Replay, the code behind
// `recourse replay ID` and POST /api/v1/webhook-events/{id}/replay
// (audited as the signed-in admin).
func (con *Console) adminReplay(c echo.Context) error {
	if con.opt.Inbox == nil {
		return con.renderError(c, http.StatusServiceUnavailable, "The webhook inbox is not available on this server.")
	}
	id := c.Param("id")
	if _, err := con.opt.Inbox.Replay(c.Request().Context(), id, con.opt.Clock.Now()); err != nil {
		return con.showWebhook(c, http.StatusOK, err)
	}
	if con.opt.Replayed != nil {
		con.opt.Replayed()
	}
	return c.Redirect(http.StatusSeeOther, "/admin/webhooks/"+url.PathEscape(id)+"?done=replayed")
}
