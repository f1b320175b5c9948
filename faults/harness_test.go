package faults

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/stripetest"
)

// gate is the environment variable that turns the suite on.
const gate = "RECOURSE_FAULTS"

var (
	enabled = os.Getenv(gate) == "1"
	binPath string // the recourse binary built by TestMain
	secret  = stripetest.DefaultSecret
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if enabled {
			dir, err := os.MkdirTemp("", "recourse-faults-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			binPath = filepath.Join(dir, "recourse")
			start := time.Now()
			cmd := exec.Command("go", "build", "-o", binPath, "./cmd/recourse")
			cmd.Dir = ".."
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "faults: build recourse: %v\n%s", err, out)
				return 1
			}
			fmt.Printf("faults: built %s in %s\n", binPath, time.Since(start).Round(time.Millisecond))
		}
		code := m.Run()
		if enabled {
			printLedger(os.Stdout)
			if resourceSummary != "" {
				fmt.Printf("\nresources: %s\n", resourceSummary)
			}
		}
		return code
	}())
}

// requireSuite skips t unless the fault suite is turned on.
func requireSuite(t *testing.T) {
	t.Helper()
	if !enabled {
		t.Skipf("the fault suite runs with %s=1 (make faults)", gate)
	}
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is one `recourse serve` child process; it can be killed with
// SIGKILL and started again on the same address.
type server struct {
	t       *testing.T
	name    string
	addr    string
	url     string
	env     []string
	logPath string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// serverEnv is what every process of the suite runs with; vars override it.
func serverEnv(addr string, vars map[string]string) []string {
	base := map[string]string{
		"RECOURSE_HTTP_ADDR":              addr,
		"RECOURSE_STRIPE_WEBHOOK_SECRETS": secret,
		"RECOURSE_WORKER_POLL_INTERVAL":   "50ms",
		"RECOURSE_WORKER_LEASE":           "6s",
		"RECOURSE_WORKER_BACKOFF_BASE":    "250ms",
		"RECOURSE_WORKER_BACKOFF_MAX":     "2s",
		"RECOURSE_WORKER_MAX_ATTEMPTS":    "12",
		"RECOURSE_DB_MAX_CONNS":           "10",
		"RECOURSE_SWEEP_INTERVAL":         "1s",
		"RECOURSE_SHUTDOWN_TIMEOUT":       "10s",
		"RECOURSE_LOG_LEVEL":              "warn",
		"RECOURSE_LOG_FORMAT":             "text",
		// Storms come from one address; the abuse limits are not what is tested here.
		"RECOURSE_RATE_LIMIT_TOKEN":      "0",
		"RECOURSE_RATE_LIMIT_IP":         "0",
		"RECOURSE_RATE_LIMIT_CONSOLE":    "0",
		"RECOURSE_RATE_LIMIT_STRIPE":     "0",
		"RECOURSE_RATE_LIMIT_ESCALATION": "0",
	}
	for k, v := range vars {
		base[k] = v
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "DATABASE_URL" || strings.HasPrefix(k, "RECOURSE_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range base {
		env = append(env, k+"="+v)
	}
	return env
}

// newServer starts a serve process with vars (DATABASE_URL at least) and
// waits until it is ready. It is stopped when t ends.
func newServer(t *testing.T, name string, vars map[string]string) *server {
	t.Helper()
	addr := freeAddr(t)
	s := &server{t: t, name: name, addr: addr, url: "http://" + addr, env: serverEnv(addr, vars),
		logPath: filepath.Join(t.TempDir(), name+".log")}
	t.Cleanup(s.stop)
	s.start()
	return s
}

// start runs the process and waits for /readyz to answer 200.
func (s *server) start() {
	s.t.Helper()
	if err := s.startErr(); err != nil {
		s.t.Fatal(err)
	}
}

func (s *server) startErr() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(binPath, "serve")
	cmd.Env = s.env
	// If the test binary dies (a timeout's panic), its servers die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready:\n%s", s.name, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within 30s: %v\n%s", s.name, err, s.logTail())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (s *server) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// stop asks the process to shut down (SIGTERM) and kills it after 20s.
func (s *server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
}

// pid is the process id of the running process.
func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// rssKB reads VmRSS (resident memory, kB) of the process from /proc.
func (s *server) rssKB() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// logTail returns the end of the process's log.
func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// logLines returns the lines of the process's log that contain all of subs.
func (s *server) logLines(subs ...string) []string {
	b, _ := os.ReadFile(s.logPath)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(line, sub)
		}
		if ok && line != "" {
			out = append(out, line)
		}
	}
	return out
}

// cli runs a recourse subcommand against the database at url.
func cli(t *testing.T, url string, args ...string) string {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = serverEnv("127.0.0.1:0", map[string]string{"DATABASE_URL": url})
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("recourse %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// openDB opens the database the processes share, for the ledger.
func openDB(t *testing.T, url string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), url, "", db.Options{MaxConns: 4})
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// drain waits until no event in the inbox is pending.
func drain(t *testing.T, d *db.DB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var pending int64
		err := d.Gorm.Raw("SELECT COUNT(*) FROM webhook_events WHERE status = 'pending'").Scan(&pending).Error
		if err == nil && pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("inbox not drained within %s: %d pending (%v)", timeout, pending, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// discard drains and closes a response body.
func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
