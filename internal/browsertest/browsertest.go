// Package browsertest drives a real headless Chromium from tests, through the
// DevTools protocol (chromedp), the way a person uses the console: open a
// page, fill a labelled field, click, read the visible text.
//
// It finds the browser at RECOURSE_CHROMIUM, else `chromium` (or
// `chromium-browser`) in PATH; scripts/test.sh installs Debian's chromium
// when it is missing and sets RECOURSE_CHROMIUM. Without a browser the test
// is skipped, except under CI=true, where that is a failure: CI must never
// pass without having run the browser tests.
//
// A Browser is one Chromium process; each Session is an isolated browser
// context of it (its own cookies and storage), so two users can work side by
// side in one test. Screenshots go to the artifacts directory
// (RECOURSE_TEST_ARTIFACTS, else <module root>/artifacts), one folder per
// test, and a session takes one by itself when its test fails. Axe runs the
// vendored axe-core (testdata/axe.min.js, see testdata/VENDORED.md) in the
// page and fails the test on serious or critical violations.
//
// A test starts one browser and opens a session per user; every helper
// fails the test (with the page's URL) when the page does not get there
// within Session.Timeout:
//
//	b := browsertest.Start(t) // one Chromium; share it across subtests
//	ada := b.NewSession(t)    // ada's own cookies
//	ada.Navigate(in.url + "/login")
//	ada.FillLabeled("Email", "ada@example.com")
//	ada.FillLabeled("Password", password)
//	ada.ClickButton("Sign in")
//	ada.WaitText("h1", "Queues")
//	ada.Axe()                 // no serious or critical violation
//	ada.Screenshot("queues")  // artifacts/TestX/01-queues.png
//	ada.NoConsoleErrors()     // no JS error, no CSP violation
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds each action of a Session (a navigation, a wait, a
// click) unless Session.Timeout says otherwise.
const DefaultTimeout = 15 * time.Second

// Viewport is the window size every session has: the console must work at
// 1280×800 without horizontal scrolling.
const (
	ViewportWidth  = 1280
	ViewportHeight = 800
)

// Browser is one headless Chromium process, closed when the test that
// started it ends.
type Browser struct {
	ctx    context.Context // the first tab's context; sessions derive from it
	output *lockedBuffer   // what Chromium wrote on stdout/stderr
}

// ExecPath returns the Chromium executable the tests use: RECOURSE_CHROMIUM,
// else chromium or chromium-browser in PATH. It returns "" when there is none.
func ExecPath() string {
	if p := os.Getenv("RECOURSE_CHROMIUM"); p != "" {
		if lp, err := exec.LookPath(p); err == nil {
			return lp
		}
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if lp, err := exec.LookPath(name); err == nil {
			return lp
		}
	}
	return ""
}

// Start launches headless Chromium (no sandbox, no GPU, 1280×800) for t and
// closes it when t ends. Without a browser it skips t, or fails it under
// CI=true.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := ExecPath()
	if path == "" {
		msg := "no Chromium: set RECOURSE_CHROMIUM or install Debian's chromium (scripts/test.sh does it)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("browsertest: %s; CI=true refuses to skip the browser tests", msg)
		}
		t.Skipf("browsertest: %s; skipping the browser test", msg)
	}
	out := &lockedBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(ViewportWidth, ViewportHeight),
		chromedp.CombinedOutput(out),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	// The first run starts the browser and must get ctx itself: chromedp
	// ties the browser's life to the context of that run. A browser that
	// does not answer within a minute is killed.
	watchdog := time.AfterFunc(time.Minute, cancelCtx)
	err := chromedp.Do(ctx)
	watchdog.Stop()
	if err != nil {
		t.Fatalf("browsertest: start %s: %v\n%s", path, err, out.String())
	}
	return &Browser{ctx: ctx, output: out}
}

// Session is one isolated browser context with one tab: its own cookies,
// storage and cache. Its methods report failures on the test that opened it
// and stop that test; call them from that test's goroutine.
type Session struct {
	// Timeout bounds each action; DefaultTimeout when zero.
	Timeout time.Duration

	t   testing.TB
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// NewSession opens a new isolated browser context for t, closed when t ends.
// When t has failed by then, the session first saves a screenshot named
// "failure".
func (b *Browser) NewSession(t testing.TB) *Session {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	s := &Session{t: t, ctx: ctx}
	// The first run opens the tab, with ctx itself (see Start).
	watchdog := time.AfterFunc(30*time.Second, cancel)
	err := chromedp.Do(ctx)
	watchdog.Stop()
	if err != nil {
		cancel()
		t.Fatalf("browsertest: open session: %v\n%s", err, b.output.String())
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			s.mu.Lock()
			s.console = append(s.console, m)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			if path, err := s.screenshot("failure", 10*time.Second); err == nil {
				t.Logf("browsertest: screenshot at failure: %s", path)
			} else {
				t.Logf("browsertest: screenshot at failure: %v", err)
			}
		}
		cancel()
		<-done
	})
	return s
}

// Context returns the session's chromedp context, for actions this package
// has no helper for. Bound each call with a timeout.
func (s *Session) Context() context.Context { return s.ctx }

// Do runs chromedp actions in the session within Timeout and fails the test
// with what if one fails.
func (s *Session) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout())
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		s.fatalf("%s: %v", what, err)
	}
}

// Navigate opens url and waits for the page's load event.
func (s *Session) Navigate(url string) {
	s.t.Helper()
	s.Do("navigate to "+url, chromedp.Navigate(url))
}

// Fill clears the first element matching the CSS selector and types text
// into it, key by key, as a person would.
func (s *Session) Fill(selector, text string) {
	// Cleared by script: chromedp's Clear fails on an empty textarea (no text node).
	s.t.Helper()
	sel := chromedp.CSS(selector)
	s.Do("fill "+selector, chromedp.WaitVisible(sel))
	Eval[bool](s, fmt.Sprintf(`(() => { const el = document.querySelector(%q); el.value = ""; return true; })()`, selector))
	s.Do("fill "+selector, chromedp.SendKeys(sel, text))
}

// FillLabeled fills the form control whose <label> reads label (the label's
// visible text, trimmed), the way a person finds a field.
func (s *Session) FillLabeled(label, text string) {
	s.t.Helper()
	sel := chromedp.JSPath(labeledControlJS(label))
	s.Do(fmt.Sprintf("fill the field labelled %q", label), chromedp.WaitVisible(sel), chromedp.Clear(sel), chromedp.SendKeys(sel, text))
}

// Click clicks the first element matching the CSS selector, once visible.
func (s *Session) Click(selector string) {
	s.t.Helper()
	sel := chromedp.CSS(selector)
	s.Do("click "+selector, chromedp.WaitVisible(sel), chromedp.Click(sel))
}

// ClickButton clicks the first visible button (or submit input, or link with
// role=button) whose text is text, trimmed.
func (s *Session) ClickButton(text string) {
	s.t.Helper()
	sel := chromedp.JSPath(buttonJS(text))
	s.Do(fmt.Sprintf("click the button %q", text), chromedp.WaitVisible(sel), chromedp.Click(sel))
}

// WaitVisible waits until an element matching the CSS selector is visible.
func (s *Session) WaitVisible(selector string) {
	s.t.Helper()
	s.Do("wait for "+selector+" to be visible", chromedp.WaitVisible(chromedp.CSS(selector)))
}

// WaitText waits until an element matching the CSS selector is visible and
// its visible text contains text — the way to wait for the next page after a
// click, when the current page has the same elements.
func (s *Session) WaitText(selector, text string) {
	s.t.Helper()
	sel := chromedp.JSPath(fmt.Sprintf(`[...document.querySelectorAll(%s)].filter(e => e.innerText.includes(%s)).slice(0, 1)`, jsString(selector), jsString(text)))
	s.Do(fmt.Sprintf("wait for %s to show %q", selector, text), chromedp.WaitVisible(sel))
}

// WaitGone waits until no element matches the CSS selector.
func (s *Session) WaitGone(selector string) {
	s.t.Helper()
	s.Do("wait for "+selector+" to go", chromedp.WaitNotPresent(chromedp.CSS(selector)))
}

// Text returns the visible text (innerText) of the first element matching
// the CSS selector, once it is visible.
func (s *Session) Text(selector string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout())
	defer cancel()
	sel := chromedp.CSS(selector)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(sel)); err != nil {
		s.fatalf("text of %s: %v", selector, err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		s.fatalf("text of %s: %v", selector, err)
	}
	return text
}

// Location returns the page's current URL.
func (s *Session) Location() string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout())
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		s.fatalf("location: %v", err)
	}
	return loc
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and returns its JSON value decoded into T.
func Eval[T any](s *Session, expression string) T {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout())
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
	if err != nil {
		s.fatalf("eval %.80q: %v", expression, err)
	}
	return v
}

// BypassCSP turns the page's Content-Security-Policy off (Page.setBypassCSP)
// for the next navigations. Tests of the console should not need it: Axe
// works under the console's CSP.
func (s *Session) BypassCSP() {
	s.t.Helper()
	s.Do("bypass CSP", func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true})
		return chromedp.Void{}, err
	})
}

// Screenshot saves a full-page PNG of the session's page as
// <artifacts>/<TestName>/NN-name.png and returns its path. NN counts the
// test's screenshots (across its sessions) from 01.
func (s *Session) Screenshot(name string) string {
	s.t.Helper()
	path, err := s.screenshot(name, s.timeout())
	if err != nil {
		s.t.Fatalf("browsertest: %v", err)
	}
	s.t.Logf("browsertest: screenshot %s", path)
	return path
}

func (s *Session) screenshot(name string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", fmt.Errorf("screenshot %s: %w", name, err)
	}
	path, err := nextArtifact(s.t, name+".png")
	if err != nil {
		return "", fmt.Errorf("screenshot %s: %w", name, err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "", fmt.Errorf("screenshot %s: %w", name, err)
	}
	return path, nil
}

// ConsoleErrors returns what the page reported as errors so far: console.error
// calls, uncaught exceptions and browser-log errors, among them
// Content-Security-Policy violations (a blocked inline script or style, a
// script from another origin). It leaves out the failure of the favicon
// request the browser makes by itself, and the pair htmx logs when a
// navigation cancels a poll still in flight (htmx:afterRequest then
// htmx:sendAbort): a person leaving the page mid-refresh sees nothing wrong,
// and whether a poll happens to be in flight is timing, not a defect. Console
// tests assert the rest is empty.
func (s *Session) ConsoleErrors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	lastAfterRequest := -1 // index in out of an htmx:afterRequest error
	for _, m := range s.console {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		if m.Source == "network" && strings.HasSuffix(m.URL, "/favicon.ico") {
			continue
		}
		if text := m.String(); strings.HasSuffix(text, "htmx:sendAbort") {
			if lastAfterRequest >= 0 && lastAfterRequest == len(out)-1 {
				out = out[:lastAfterRequest]
			}
			lastAfterRequest = -1
			continue
		} else if strings.HasSuffix(text, "htmx:afterRequest") {
			lastAfterRequest = len(out)
		} else {
			lastAfterRequest = -1
		}
		msg := m.String()
		if m.Source != "" {
			msg = "[" + m.Source + "] " + msg
		}
		if m.URL != "" {
			msg += fmt.Sprintf(" (%s:%d)", m.URL, m.Line+1)
		}
		out = append(out, msg)
	}
	return out
}

// NoConsoleErrors fails the test when the page reported any error (see
// ConsoleErrors).
func (s *Session) NoConsoleErrors() {
	s.t.Helper()
	if errs := s.ConsoleErrors(); len(errs) > 0 {
		s.t.Errorf("browsertest: the page reported %d error(s):\n  %s", len(errs), strings.Join(errs, "\n  "))
	}
}

func (s *Session) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

// fatalf stops the test, naming the page it was on.
func (s *Session) fatalf(format string, args ...any) {
	s.t.Helper()
	msg := fmt.Sprintf(format, args...)
	if errors.Is(s.ctx.Err(), context.Canceled) {
		msg += " (the browser has gone)"
	} else {
		ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil {
			msg += " (on " + loc + ")"
		}
		cancel()
	}
	s.t.Fatalf("browsertest: %s", msg)
}

// labeledControlJS finds the control a <label> with this text labels: by its
// for attribute, else the control inside it.
func labeledControlJS(label string) string {
	return fmt.Sprintf(`(() => {
  const want = %s;
  for (const l of document.querySelectorAll("label")) {
    if (l.innerText.trim() !== want) continue;
    const c = l.control || l.querySelector("input,select,textarea");
    if (c) return [c];
  }
  return [];
})()`, jsString(label))
}

// buttonJS finds visible buttons whose text is text.
func buttonJS(text string) string {
	return fmt.Sprintf(`(() => {
  const want = %s;
  return [...document.querySelectorAll("button, input[type=submit], input[type=button], [role=button]")]
    .filter(b => b.getClientRects().length > 0 && ((b.tagName === "INPUT" ? b.value : b.innerText) || "").trim() === want)
    .slice(0, 1);
})()`, jsString(text))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\u2028", `\u2028`, "\u2029", `\u2029`, "<", `\x3c`)
	return `"` + r.Replace(s) + `"`
}

// Artifacts.

var (
	artifactsMu   sync.Mutex
	artifactCount = map[string]int{} // test directory → files written
)

// ArtifactsDir returns the directory the artifacts of t go to:
// RECOURSE_TEST_ARTIFACTS (else <module root>/artifacts), then t's name. The
// first call in a test binary for a test empties what an earlier run left.
func ArtifactsDir(t testing.TB) (string, error) {
	root := os.Getenv("RECOURSE_TEST_ARTIFACTS")
	if root == "" {
		mod, err := moduleRoot()
		if err != nil {
			return "", err
		}
		root = filepath.Join(mod, "artifacts")
	}
	dir := filepath.Join(root, safeName(t.Name()))
	artifactsMu.Lock()
	defer artifactsMu.Unlock()
	if _, seen := artifactCount[dir]; !seen {
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
		artifactCount[dir] = 0
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

// nextArtifact returns the path of t's next artifact, NN-name.
func nextArtifact(t testing.TB, name string) (string, error) {
	dir, err := ArtifactsDir(t)
	if err != nil {
		return "", err
	}
	artifactsMu.Lock()
	defer artifactsMu.Unlock()
	artifactCount[dir]++
	return filepath.Join(dir, fmt.Sprintf("%02d-%s", artifactCount[dir], safeName(name))), nil
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// safeName turns a test name (with "/" between subtests) or a screenshot
// name into one path element.
func safeName(s string) string {
	return strings.Trim(unsafeChars.ReplaceAllString(s, "_"), "_")
}

// moduleRoot walks up from the working directory (a package's, under go
// test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; set RECOURSE_TEST_ARTIFACTS")
		}
		dir = parent
	}
}

// lockedBuffer collects Chromium's output for error messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 64<<10 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
