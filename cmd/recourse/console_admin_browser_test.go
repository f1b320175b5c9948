package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/browsertest"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// The admin screens through the real binary and a real browser: an admin
// (made at the command line) creates a user and a one-time password link;
// the new user opens it in another browser, sets a password, signs in and
// sees the queues; the admin issues a token (its secret shown once), finds
// a dead-lettered webhook event and replays it, then a failed notification;
// policy and audit read;
// an agent opening /admin/users gets the 403 page with no user in it.
// Every page passes axe and reports no console or CSP error.
func TestConsoleAdminBrowser(t *testing.T) {
	b := browsertest.Start(t)
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			const password = "correct horse battery"
			withStdin(password+"\n", func() {
				in.mustCLI("user", "create", "--email", "root@example.com", "--name", "Rita Root", "--role", "admin", "--password-stdin")
			})
			withStdin(password+"\n", func() {
				in.mustCLI("user", "create", "--email", "agent@example.com", "--name", "Aldo Agent", "--role", "agent", "--password-stdin")
			})

			admin := b.NewSession(t)
			signIn(admin, in.url, "root@example.com", password)
			admin.Click("#nav-admin")
			admin.WaitText("h1", "Admin")
			admin.Axe()
			fitsWidth(t, admin)
			admin.Screenshot("admin-index")

			// Users: create one.
			admin.Click(`.admin-nav a[href="/admin/users"]`)
			admin.WaitVisible("#users")
			admin.Axe()
			fitsWidth(t, admin)
			admin.Screenshot("admin-users")
			admin.FillLabeled("Email", "nia@example.com")
			admin.FillLabeled("Name", "Nia Newcomer")
			admin.ClickButton("Create user")
			admin.WaitText("#notice", "User created")
			admin.WaitText("#users", "nia@example.com")
			admin.Screenshot("admin-user-created")

			// A one-time password link for her (the newest user is last).
			admin.Click(`#users tbody tr:last-child form[action$="/link"] button`)
			admin.WaitVisible("#link")
			admin.Axe()
			fitsWidth(t, admin)
			admin.Screenshot("admin-password-link")
			link := browsertest.Eval[string](admin, `document.querySelector("#link").value`)
			// The server runs without RECOURSE_PUBLIC_URL (its port is
			// chosen at boot): links carry the default base.
			if !strings.HasPrefix(link, "http://localhost:8080/password/set?token=") {
				t.Fatalf("link %q", link)
			}
			link = in.url + strings.TrimPrefix(link, "http://localhost:8080")

			// Nia, in her own browser, sets her password and signs in.
			nia := b.NewSession(t)
			nia.Navigate(link)
			nia.WaitText("h1", "Set your password")
			nia.Axe()
			fitsWidth(t, nia)
			nia.Screenshot("password-set-form")
			niaPassword := "nia's long passphrase"
			nia.FillLabeled("New password", niaPassword)
			nia.FillLabeled("The same password again", niaPassword)
			nia.ClickButton("Set password")
			nia.WaitText("#notice", "Your password is set")
			nia.Axe()
			fitsWidth(t, nia)
			nia.Screenshot("password-set-done")
			signIn(nia, in.url, "nia@example.com", niaPassword)
			nia.Screenshot("nia-queues")
			nia.NoConsoleErrors()
			// The link does not work twice.
			nia.Navigate(link)
			nia.WaitText(".error", "already been used")
			nia.Screenshot("password-link-used")
			onlyRefusal(t, nia, 400)

			// The CLI prints a link on RECOURSE_PUBLIC_URL.
			in.env["RECOURSE_PUBLIC_URL"] = in.url
			if out := strings.TrimSpace(in.mustCLI("user", "link", "nia@example.com")); !strings.HasPrefix(out, in.url+"/password/set?token=") {
				t.Errorf("recourse user link printed %q", out)
			}

			// Tokens: the secret is shown once.
			admin.Navigate(in.url + "/admin/tokens")
			admin.WaitVisible("#create-token")
			admin.Axe()
			fitsWidth(t, admin)
			admin.FillLabeled("Label", "billing integration")
			admin.ClickButton("Create token")
			admin.WaitVisible("#secret")
			secret := browsertest.Eval[string](admin, `document.querySelector("#secret").value`)
			if !strings.HasPrefix(secret, "rct_") {
				t.Fatalf("secret %q", secret)
			}
			admin.Axe()
			fitsWidth(t, admin)
			admin.Screenshot("admin-token-created")
			if code, _ := in.do("GET", "/api/v1/cases", secret, nil, nil); code != 200 {
				t.Errorf("the shown token: GET /api/v1/cases %d", code)
			}
			admin.Navigate(in.url + "/admin/tokens")
			admin.WaitText("#tokens", "billing integration")
			if html := browsertest.Eval[string](admin, `document.documentElement.outerHTML`); strings.Contains(html, secret) {
				t.Error("the token list shows the secret again")
			}
			admin.Screenshot("admin-tokens")

			// Webhook events: find the dead letter and replay it.
			in.deadEvent("evt_console_dead")
			admin.Navigate(in.url + "/admin/webhooks")
			admin.WaitVisible(".tabs")
			admin.Click(`.tabs a[href="/admin/webhooks?status=dead"]`)
			admin.WaitText("#webhook-events", "evt_console_dead")
			admin.Axe()
			fitsWidth(t, admin)
			admin.Screenshot("admin-dead-letters")
			admin.Click(`a[href="/admin/webhooks/evt_console_dead"]`)
			admin.WaitText("#event", "gave up")
			admin.Axe()
			fitsWidth(t, admin)
			admin.Screenshot("admin-webhook-event")
			admin.ClickButton("Replay event")
			admin.WaitText("#notice", "Replayed")
			admin.Screenshot("admin-webhook-replayed")
			tok := in.token("admin")
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, m := in.do("GET", "/api/v1/webhook-events/evt_console_dead", tok, nil, nil)
				if code == 200 && m["status"] != "dead" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after replay: %d %v", code, m)
				}
				time.Sleep(50 * time.Millisecond)
			}

			// Notifications: the delivery that failed, why, and its replay.
			in.failedNotification("ntf_console_failed")
			admin.Navigate(in.url + "/admin/notifications")
			admin.WaitVisible(".tabs")
			admin.Click(`.tabs a[href="/admin/notifications?status=failed"]`)
			admin.WaitText("#notifications", "receiver answered 500")
			admin.Axe()
			fitsWidth(t, admin)
			admin.Screenshot("admin-notifications-failed")
			admin.ClickButton("Replay")
			admin.WaitText("#notice", "Replayed")
			admin.Axe()
			admin.Screenshot("admin-notification-replayed")

			// Policy and audit, which has the replay and the link.
			admin.Navigate(in.url + "/admin/policy")
			admin.WaitVisible("#permissions")
			admin.Axe()
			fitsWidth(t, admin)
			admin.Screenshot("admin-policy")
			admin.Navigate(in.url + "/admin/audit")
			admin.WaitText("#audit", "webhook_event.replay")
			admin.WaitText("#audit", "user.password_link.use")
			admin.FillLabeled("Action", "user.password_link.create")
			admin.ClickButton("Filter")
			admin.WaitText("#audit", "Rita Root")
			if txt := admin.Text("#audit"); strings.Contains(txt, "webhook_event.replay") {
				t.Error("the action filter leaves other actions in")
			}
			admin.Axe()
			fitsWidth(t, admin)
			admin.Screenshot("admin-audit")
			admin.NoConsoleErrors()

			// An agent may not manage users: the 403 page, no user data.
			agent := b.NewSession(t)
			signIn(agent, in.url, "agent@example.com", password)
			agent.NoConsoleErrors()
			agent.Navigate(in.url + "/admin/users")
			agent.WaitText("h1", "Forbidden")
			page := browsertest.Eval[string](agent, `document.documentElement.outerHTML`)
			for _, leak := range []string{"nia@example.com", "root@example.com", "Nia Newcomer", "Rita Root"} {
				if strings.Contains(page, leak) {
					t.Errorf("the agent's 403 page shows %q", leak)
				}
			}
			agent.Axe()
			agent.Screenshot("agent-admin-users-403")
			onlyRefusal(t, agent, 403)
		})
	}
}

// onlyRefusal fails t unless every console error of s is the browser's own
// report of the page's expected status (a refused page is still a page).
func onlyRefusal(t *testing.T, s *browsertest.Session, status int) {
	t.Helper()
	errs := s.ConsoleErrors()
	if len(errs) == 0 {
		t.Errorf("no report of the %d the page answered", status)
	}
	for _, e := range errs {
		if !strings.Contains(e, fmt.Sprintf("responded with a status of %d", status)) {
			t.Errorf("console error: %s", e)
		}
	}
}

// fitsWidth fails t if the page scrolls sideways at the session's width
// (1280x800).
func fitsWidth(t *testing.T, s *browsertest.Session) {
	t.Helper()
	if w := browsertest.Eval[int](s, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); w > 0 {
		t.Errorf("%s scrolls sideways by %dpx", s.Location(), w)
	}
}
