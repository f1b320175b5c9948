package browsertest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// strictCSP is the policy the console sends.
const strictCSP = "default-src 'self'; script-src 'self'"

const goodPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in</title><script src="/app.js"></script></head>
<body>
<main>
<h1>Sign in</h1>
<form method="post" action="/login">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autocomplete="username">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password">
  <button id="login" type="submit">Sign in</button>
</form>
<p id="who"></p>
</main>
</body>
</html>`

// appJS is the page's own script, allowed by script-src 'self'.
const appJS = `document.addEventListener("DOMContentLoaded", () => { document.getElementById("who").textContent = "script ran"; });`

const badPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Broken</title></head>
<body>
<main>
<h1>Broken</h1>
<img src="/pixel.png">
<input id="nolabel" type="text">
<script>document.title = "inline script ran";</script>
</main>
</body>
</html>`

// pixel is a 1×1 transparent PNG.
var pixel = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x03\x00\x08\xfc\x02\xfe\xa7\x9a\xa0\xa0\x00\x00\x00\x00IEND\xaeB`\x82")

// testSite serves the two pages under the console's CSP, a cookie setter and
// a page that shows the cookie.
func testSite(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	page := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(body))
		}
	}
	mux.HandleFunc("GET /good", page(goodPage))
	mux.HandleFunc("GET /bad", page(badPage))
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = w.Write([]byte(appJS))
	})
	mux.HandleFunc("GET /pixel.png", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(pixel)
	})
	mux.HandleFunc("GET /set", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "who", Value: r.URL.Query().Get("v"), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/show", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /show", func(w http.ResponseWriter, r *http.Request) {
		who := "nobody"
		if c, err := r.Cookie("who"); err == nil {
			who = c.Value
		}
		page(fmt.Sprintf(`<!doctype html><html lang="en"><head><title>Who</title></head><body><main><h1>Who</h1><p id="who">%s</p></main></body></html>`, who))(w, r)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", strictCSP)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The browser is shared by the subtests: one Chromium for the package.
func TestBrowser(t *testing.T) {
	b := Start(t)
	srv := testSite(t)

	t.Run("FormAndText", func(t *testing.T) {
		s := b.NewSession(t)
		s.Navigate(srv.URL + "/good")
		if got := s.Text("h1"); got != "Sign in" {
			t.Errorf("h1 = %q", got)
		}
		// The page's own script ran under script-src 'self'.
		if got := s.Text("#who"); got != "script ran" {
			t.Errorf("#who = %q, want the page script's text", got)
		}
		s.WaitText("main h1", "Sign")
		s.Fill("#email", "ana@example.com")
		s.FillLabeled("Password", "s3cret")
		if got := Eval[string](s, `document.getElementById("email").value + "|" + document.getElementById("password").value`); got != "ana@example.com|s3cret" {
			t.Errorf("values = %q", got)
		}
		s.NoConsoleErrors()
	})

	t.Run("AxePassesLabelledFormUnderStrictCSP", func(t *testing.T) {
		s := b.NewSession(t)
		s.Navigate(srv.URL + "/good")
		s.Axe()
		if vs := s.AxeViolations(); len(vs) > 0 {
			t.Logf("non-blocking violations: \n%s", FormatViolations(vs))
		}
		// Injecting axe under the CSP raised no violation report.
		s.NoConsoleErrors()
	})

	t.Run("AxeReportsViolations", func(t *testing.T) {
		s := b.NewSession(t)
		s.Navigate(srv.URL + "/bad")
		vs := s.AxeViolations()
		found := map[string]AxeViolation{}
		for _, v := range vs {
			found[v.ID] = v
		}
		for _, id := range []string{"image-alt", "label"} {
			v, ok := found[id]
			if !ok {
				t.Errorf("axe did not report %s; got:\n%s", id, FormatViolations(vs))
				continue
			}
			if !v.Blocking() {
				t.Errorf("%s has impact %q, want serious or critical", id, v.Impact)
			}
		}
		msg := FormatViolations(vs)
		for _, want := range []string{"image-alt (critical)", `"img"`, "label (critical)", `"#nolabel"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("report lacks %q:\n%s", want, msg)
			}
		}

		// Axe itself fails the test that runs it, naming rule and node (on
		// a recorder, so this test passes; its failure screenshot goes to a
		// temporary directory).
		t.Setenv("RECOURSE_TEST_ARTIFACTS", t.TempDir())
		rec := &recorder{TB: t}
		rs := b.NewSession(rec)
		rs.Navigate(srv.URL + "/bad")
		rs.Axe()
		if got := rec.errors(); !strings.Contains(got, "image-alt (critical)") || !strings.Contains(got, "#nolabel") {
			t.Errorf("Axe on the bad page reported %q", got)
		}

		// Excluding the offending elements and disabling a rule silences them.
		s.Navigate(srv.URL + "/bad")
		for _, v := range s.AxeViolations(AxeExclude("img"), AxeDisableRules("label")) {
			if v.ID == "image-alt" || v.ID == "label" {
				t.Errorf("excluded violation %s still reported", v.ID)
			}
		}
	})

	t.Run("ConsoleErrorsReportCSPViolations", func(t *testing.T) {
		s := b.NewSession(t)
		s.Navigate(srv.URL + "/bad")
		if got := Eval[string](s, `document.title`); got != "Broken" {
			t.Errorf("the inline script ran under the CSP: title %q", got)
		}
		// The report arrives as an event, after the load: give it time.
		var errs string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if errs = strings.Join(s.ConsoleErrors(), "\n"); strings.Contains(errs, "Content Security Policy") {
				break
			}
		}
		if !strings.Contains(errs, "Content Security Policy") {
			t.Errorf("ConsoleErrors = %q, want the blocked inline script", errs)
		}
	})

	t.Run("ConsoleErrorsForgiveOnlyAnAbortedPoll", func(t *testing.T) {
		s := b.NewSession(t)
		s.Navigate(srv.URL + "/good")
		// What htmx logs when a navigation cancels a poll in flight, then a
		// lone afterRequest (a failed request) and an ordinary error.
		Eval[bool](s, `console.error("htmx:afterRequest"); console.error("htmx:sendAbort");
			console.error("htmx:afterRequest"); console.error("real trouble"); true`)
		var errs []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if errs = s.ConsoleErrors(); len(errs) >= 2 {
				break
			}
		}
		if len(errs) != 2 || !strings.Contains(errs[0], "htmx:afterRequest") || !strings.Contains(errs[1], "real trouble") {
			t.Errorf("ConsoleErrors = %q, want the lone afterRequest and the real error", errs)
		}
	})

	t.Run("Screenshot", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("RECOURSE_TEST_ARTIFACTS", dir)
		s := b.NewSession(t)
		s.Navigate(srv.URL + "/good")
		first := s.Screenshot("sign in")
		second := s.Screenshot("again")
		if want := filepath.Join(dir, "TestBrowser_Screenshot", "01-sign_in.png"); first != want {
			t.Errorf("first screenshot at %s, want %s", first, want)
		}
		if filepath.Base(second) != "02-again.png" {
			t.Errorf("second screenshot at %s", second)
		}
		png, err := os.ReadFile(first)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 1000 {
			t.Errorf("screenshot is not a PNG of a page (%d bytes)", len(png))
		}
	})

	t.Run("ScreenshotOnFailure", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("RECOURSE_TEST_ARTIFACTS", dir)
		// A failing inner test, run on a recorder so this one passes.
		rec := &recorder{TB: t, name: "Inner"}
		rec.run(func() {
			s := b.NewSession(rec)
			s.Navigate(srv.URL + "/good")
			rec.Errorf("deliberate failure")
		})
		shot := filepath.Join(dir, "Inner", "01-failure.png")
		if _, err := os.Stat(shot); err != nil {
			t.Errorf("no screenshot at failure: %v", err)
		}
	})

	t.Run("SessionsHaveSeparateCookies", func(t *testing.T) {
		ana, ben := b.NewSession(t), b.NewSession(t)
		ana.Navigate(srv.URL + "/set?v=ana")
		ana.WaitText("#who", "ana")
		if got := ana.Text("#who"); got != "ana" {
			t.Fatalf("ana sees %q", got)
		}
		ben.Navigate(srv.URL + "/show")
		if got := ben.Text("#who"); got != "nobody" {
			t.Errorf("ben's session sees ana's cookie: %q", got)
		}
		ben.Navigate(srv.URL + "/set?v=ben")
		ana.Navigate(srv.URL + "/show")
		if got := ana.Text("#who"); got != "ana" {
			t.Errorf("ana's cookie became %q", got)
		}
	})
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"TestConsole/agent signs in": "TestConsole_agent_signs_in",
		"queue.png":                  "queue.png",
		"../x":                       ".._x",
	} {
		if got := safeName(in); got != want {
			t.Errorf("safeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// recorder is a testing.TB whose errors are recorded instead of failing the
// test, and whose cleanups run when run returns.
type recorder struct {
	testing.TB
	name string

	mu       sync.Mutex
	errs     []string
	failed   bool
	cleanups []func()
}

func (r *recorder) Name() string {
	if r.name != "" {
		return r.name
	}
	return r.TB.Name()
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.failed = true
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) Cleanup(f func()) {
	if r.name == "" {
		r.TB.Cleanup(f)
		return
	}
	r.cleanups = append(r.cleanups, f)
}

func (r *recorder) run(f func()) {
	defer func() {
		for i := len(r.cleanups) - 1; i >= 0; i-- {
			r.cleanups[i]()
		}
	}()
	f()
}

func (r *recorder) errors() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}
