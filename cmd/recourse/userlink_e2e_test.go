package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/recourse-hq/recourse/internal/dbtest"
)

// recourse user link prints a one-time link on RECOURSE_PUBLIC_URL that a
// plain HTTP client can use once to set the password; the TTL setting is
// checked; the link's creation is audited as the operator's.
func TestUserLinkCommandEndToEnd(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			env := map[string]string{"RECOURSE_SQLITE_PATH": dbtest.NewSQLitePath(t)}
			if dialect == "postgres" {
				env["DATABASE_URL"] = dbtest.NewPostgresURL(t)
			}
			in := boot(t, env)
			in.mustCLI("user", "create", "--email", "lea@example.com", "--name", "Lea", "--role", "agent")

			// Without RECOURSE_PUBLIC_URL: the default base.
			if out := strings.TrimSpace(in.mustCLI("user", "link", "lea@example.com")); !strings.HasPrefix(out, "http://localhost:8080/password/set?token=") {
				t.Fatalf("default base: %q", out)
			}
			env["RECOURSE_PASSWORD_LINK_TTL"] = "30s"
			if _, _, err := in.cli("user", "link", "lea@example.com"); err == nil || !strings.Contains(err.Error(), "RECOURSE_PASSWORD_LINK_TTL") {
				t.Fatalf("a TTL under a minute: %v", err)
			}
			delete(env, "RECOURSE_PASSWORD_LINK_TTL")
			if _, _, err := in.cli("user", "link", "nobody@example.com"); err == nil {
				t.Fatal("a link for an unknown user")
			}
			if _, _, err := in.cli("user", "link"); err == nil {
				t.Fatal("user link without an email")
			}

			env["RECOURSE_PUBLIC_URL"] = in.url + "/"
			link := strings.TrimSpace(in.mustCLI("user", "link", "lea@example.com"))
			if !strings.HasPrefix(link, in.url+"/password/set?token=") {
				t.Fatalf("link %q", link)
			}
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar}
			get := func() (int, string) {
				r, err := c.Get(link)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Body.Close()
				b, _ := io.ReadAll(r.Body)
				return r.StatusCode, string(b)
			}
			code, body := get()
			m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
			if code != 200 || m == nil || !strings.Contains(body, "lea@example.com") {
				t.Fatalf("open link: %d\n%s", code, body)
			}
			tok := strings.TrimPrefix(link, in.url+"/password/set?token=")
			r, err := c.PostForm(in.url+"/password/set", url.Values{"csrf": {m[1]}, "token": {tok}, "password": {"lea's new password"}, "confirm": {"lea's new password"}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || !strings.Contains(string(b), "Your password is set") {
				t.Fatalf("set password: %d\n%s", r.StatusCode, b)
			}
			if code, _ := get(); code != 400 {
				t.Fatalf("second open: %d", code)
			}

			admin := in.token("admin")
			var makers, users []string
			for _, e := range auditActions(t, in, admin, "action=user.password_link.create") {
				makers = append(makers, e["actor_kind"].(string))
			}
			for _, e := range auditActions(t, in, admin, "action=user.password_link.use") {
				users = append(users, e["actor"].(string))
			}
			if len(makers) != 2 || makers[0] != "cli" || len(users) != 1 || users[0] != "Lea" {
				t.Fatalf("audit: made by %v, used by %v", makers, users)
			}
		})
	}
}
