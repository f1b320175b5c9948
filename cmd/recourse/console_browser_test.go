// Browser tests of the console: a real headless Chromium (internal/browsertest)
// against the real binary (boot). Screenshots go to artifacts/.

package main

import (
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/browsertest"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// An agent signs in through a real browser and sees the queues; the page
// passes axe and reports no console or CSP error; the session cookie is
// out of reach of scripts; a second browser session is not signed in; a
// wrong password shows an error.
func TestConsoleSignInBrowser(t *testing.T) {
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
				in.mustCLI("user", "create", "--email", "ada@example.com", "--name", "Ada Agent", "--role", "agent", "--password-stdin")
			})

			ada := b.NewSession(t)
			ada.Navigate(in.url + "/login")
			ada.WaitVisible("form")
			ada.Axe()
			ada.Screenshot("sign-in")
			ada.FillLabeled("Email", "ada@example.com")
			ada.FillLabeled("Password", password)
			ada.ClickButton("Sign in")
			ada.WaitText("h1", "Queues")
			if got := ada.Text("h1"); got != "Queues" {
				t.Errorf("after sign-in the page says %q, want Queues", got)
			}
			if loc := ada.Location(); loc != in.url+"/" {
				t.Errorf("after sign-in at %s, want %s/", loc, in.url)
			}
			if cookies := browsertest.Eval[string](ada, `document.cookie`); strings.Contains(cookies, "recourse_session") {
				t.Errorf("the session cookie is readable by scripts (not HttpOnly): %q", cookies)
			}
			ada.Axe()
			ada.Screenshot("queues")
			ada.NoConsoleErrors()

			// Another browser session has its own cookies: not signed in.
			other := b.NewSession(t)
			other.Navigate(in.url + "/")
			other.WaitVisible("#email")
			if loc := other.Location(); !strings.HasSuffix(loc, "/login") {
				t.Errorf("a second session reached %s without signing in", loc)
			}

			// A wrong password shows an error and signs nobody in.
			other.FillLabeled("Email", "ada@example.com")
			other.FillLabeled("Password", "wrong password!!")
			other.ClickButton("Sign in")
			other.WaitVisible(".error")
			if msg := other.Text(".error"); msg == "" {
				t.Error("the sign-in error is empty")
			}
			other.Axe()
			other.Screenshot("wrong-password")
			other.Navigate(in.url + "/")
			other.WaitVisible("#email")
		})
	}
}

// signIn signs a browser session in through the form.
func signIn(s *browsertest.Session, base, email, password string) {
	s.Navigate(base + "/login")
	s.FillLabeled("Email", email)
	s.FillLabeled("Password", password)
	s.ClickButton("Sign in")
	s.WaitText("h1", "Queues")
}

// Two agents have the same case open in two browsers; one adds a note and
// the other sees it — and the case's new assignee — without reloading.
func TestConsoleLiveCaseBrowser(t *testing.T) {
	b := browsertest.Start(t)
	in := boot(t, map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)})
	const password = "correct horse battery"
	for _, u := range []string{"ada", "ben"} {
		withStdin(password+"\n", func() {
			in.mustCLI("user", "create", "--email", u+"@example.com", "--name", strings.ToUpper(u[:1])+u[1:], "--role", "agent", "--password-stdin")
		})
	}
	code, c := in.do("POST", "/api/v1/cases", in.token("agent"), []byte(`{"kind":"billing_inquiry","channel":"email","title":"Why two charges?","links":{"customer":"cus_live"}}`), nil)
	if code != 201 {
		t.Fatalf("open case: %d %v", code, c)
	}
	page := in.url + "/cases/" + c["id"].(string)

	ada, ben := b.NewSession(t), b.NewSession(t)
	signIn(ada, in.url, "ada@example.com", password)
	signIn(ben, in.url, "ben@example.com", password)
	ada.Navigate(page)
	ben.Navigate(page)
	ben.WaitVisible("#timeline")
	ben.Axe()
	ben.Screenshot("case-before")

	ada.Fill("#note-body", "Customer sent the bank statement; two authorisations, one capture.")
	ada.Click("#add-note")
	ada.WaitText("#timeline", "two authorisations")
	ada.Click("#assign-me")
	ada.WaitText("#assignee", "Ada")

	// Ben never navigates: the page's poll brings both changes in.
	ben.WaitText("#timeline", "two authorisations")
	ben.WaitText("#assignee", "Ada")
	if loc := ben.Location(); loc != page {
		t.Errorf("ben's page moved to %s", loc)
	}
	ben.Screenshot("case-after")
	ben.NoConsoleErrors()
	ada.NoConsoleErrors()
}
