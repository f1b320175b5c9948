package sweep

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Every sweeps at once, again at each tick, logs failures and work done
// (not idle passes), gives each pass a deadline, and returns when ctx ends.
func TestEvery(t *testing.T) {
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	passes := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, 20*time.Millisecond, log, "sweep failed", "sweep did", func(pctx context.Context) (int, error) {
			if _, ok := pctx.Deadline(); !ok {
				t.Error("a pass has no deadline")
			}
			mu.Lock()
			defer mu.Unlock()
			passes++
			switch passes {
			case 1:
				return 2, nil
			case 2:
				return 0, errors.New("boom")
			case 3:
				cancel()
			}
			return 0, nil
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Every did not return after its context was cancelled")
	}
	if passes != 3 {
		t.Fatalf("%d passes, want 3 (now, then two ticks)", passes)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="sweep did" count=2`) || !strings.Contains(out, `msg="sweep failed" err=boom`) {
		t.Fatalf("logs: %s", out)
	}
	if strings.Count(out, "sweep did") != 1 {
		t.Fatalf("an idle pass was logged: %s", out)
	}
}
