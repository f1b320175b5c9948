// Package stripemock starts Stripe's official API mock (stripe-mock) on a
// free loopback port for tests. The binary is found at RECOURSE_STRIPE_MOCK,
// on PATH, or in $(go env GOPATH)/bin; `make test` installs v0.180.0, the
// version whose OpenAPI spec matches stripe-go v76.
package stripemock

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Mock is a running stripe-mock.
type Mock struct {
	URL string // http://127.0.0.1:PORT
}

var addrLine = regexp.MustCompile(`Listening for HTTP at address: (\S+)`)

func binary() string {
	if p := os.Getenv("RECOURSE_STRIPE_MOCK"); p != "" {
		return p
	}
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "stripe-mock")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Start runs stripe-mock for t (both listeners on loopback, ports chosen by
// the system) and stops it when t ends. Without the binary t is skipped, or
// failed under CI=true.
func Start(t testing.TB) *Mock {
	t.Helper()
	bin := binary()
	if bin == "" {
		msg := "stripe-mock not found: run `make test` (it installs github.com/stripe/stripe-mock@v0.180.0) or set RECOURSE_STRIPE_MOCK"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start stripe-mock: %v", err)
	}
	found := make(chan string, 1)
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := addrLine.FindStringSubmatch(sc.Text()); m != nil {
				once.Do(func() { found <- m[1] })
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	select {
	case addr := <-found:
		return &Mock{URL: "http://" + addr}
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not start listening within 30s")
	}
	return nil
}
