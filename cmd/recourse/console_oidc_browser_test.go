package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/recourse-hq/recourse/internal/browsertest"
	"github.com/recourse-hq/recourse/internal/dbtest"
)

// linkJS finds visible links whose text is text, the way a person finds one.
func linkJS(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("a")].filter(a => a.getClientRects().length > 0 && a.innerText.trim() === %q).slice(0, 1)`, text)
}

// pressLink focuses the link reading text and presses Enter: the
// keyboard's way through a link.
func pressLink(s *browsertest.Session, text string) {
	sel := chromedp.JSPath(linkJS(text))
	s.Do(fmt.Sprintf("press Enter on the link %q", text), chromedp.WaitVisible(sel), chromedp.Focus(sel), chromedp.KeyEvent(kb.Enter))
}

// The whole service configured with a provider (mockoidc on loopback): a
// user made with `recourse user create` presses the single sign-on button,
// the provider signs them in, and they land on the queues signed in as
// themselves. A person the provider knows but Recourse does not is told to
// ask an admin and stays signed out.
func TestConsoleOIDCBrowser(t *testing.T) {
	b := browsertest.Start(t)
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			addr := freeAddr(t)
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t), "RECOURSE_HTTP_ADDR": addr,
				"RECOURSE_OIDC_ISSUER": m.Issuer(), "RECOURSE_OIDC_CLIENT_ID": m.ClientID, "RECOURSE_OIDC_CLIENT_SECRET": m.ClientSecret,
				"RECOURSE_OIDC_REDIRECT_URL": "http://" + addr + "/login/oidc/callback", "RECOURSE_OIDC_LABEL": "Sign in with Example SSO"}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			in.mustCLI("user", "create", "--email", "ada@example.com", "--name", "Ada Agent", "--role", "agent")

			ada := b.NewSession(t)
			ada.Navigate(in.url + "/login")
			ada.WaitVisible("form")
			ada.WaitText("a", "Sign in with Example SSO")
			ada.Axe()
			ada.Screenshot("sign-in-with-sso")

			m.QueueUser(&mockoidc.MockUser{Subject: "00u-ada", Email: "Ada@Example.com", EmailVerified: true})
			pressLink(ada, "Sign in with Example SSO")
			ada.WaitText("h1", "Queues")
			if who := ada.Text("#whoami"); !strings.Contains(who, "Ada Agent") || !strings.Contains(who, "agent") {
				t.Errorf("#whoami says %q, want Ada Agent · agent", who)
			}
			if loc := ada.Location(); loc != in.url+"/" {
				t.Errorf("after single sign-on at %s, want %s/", loc, in.url)
			}
			if cookies := browsertest.Eval[string](ada, `document.cookie`); strings.Contains(cookies, "recourse_session") || strings.Contains(cookies, "recourse_login") || strings.Contains(cookies, "recourse_oidc") {
				t.Errorf("a sign-in cookie is readable by scripts: %q", cookies)
			}
			ada.Axe()
			ada.Screenshot("queues-after-sso")
			ada.NoConsoleErrors()

			// Signed out, the same button signs her in again: the session
			// is an ordinary one.
			ada.ClickButton("Sign out")
			ada.WaitVisible("#sso")
			m.QueueUser(&mockoidc.MockUser{Subject: "00u-ada", Email: "ada@example.com", EmailVerified: true})
			ada.Click("#sso")
			ada.WaitText("#whoami", "Ada Agent")

			// Someone the provider knows and Recourse does not.
			zoe := b.NewSession(t)
			zoe.Navigate(in.url + "/login")
			m.QueueUser(&mockoidc.MockUser{Subject: "00u-zoe", Email: "zoe@example.com", EmailVerified: true})
			pressLink(zoe, "Sign in with Example SSO")
			zoe.WaitText(".error", "Ask an admin")
			zoe.Axe()
			zoe.Screenshot("sso-unknown-user")
			zoe.Navigate(in.url + "/")
			zoe.WaitVisible("#email")
			if loc := zoe.Location(); !strings.HasSuffix(loc, "/login") {
				t.Errorf("an unknown user reached %s", loc)
			}
		})
	}
}
