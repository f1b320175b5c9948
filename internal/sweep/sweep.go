// Package sweep runs a periodic sweep (SLA breaches, deadline reminders,
// dispute rules, …) the same way everywhere: once now, then every interval
// until the context ends, each pass bounded by a timeout, failures logged
// and retried at the next tick.
package sweep

import (
	"context"
	"log/slog"
	"time"
)

// Every runs fn now and then every interval (a minute when ≤ 0) until ctx
// is cancelled. Each pass gets max(interval, 30s) to finish. A failure is
// logged as failed ("err" and "count" attributes); a pass that did n > 0
// things is logged as did with its count.
func Every(ctx context.Context, interval time.Duration, log *slog.Logger, failed, did string, fn func(context.Context) (int, error)) {
	if interval <= 0 {
		interval = time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, max(interval, 30*time.Second))
		n, err := fn(pctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn(failed, "err", err, "count", n)
		case err == nil && n > 0:
			log.Info(did, "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
