package webhooks

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/db"
)

// On PostgreSQL the inbox is partitioned by month of the event's created
// time (migration 0029): webhook_events_pYYYY_MM for [first of the month,
// first of the next) in UTC, and webhook_events_default for whatever no
// month holds. SQLite keeps one plain table.

// PartitionMonthsAhead is how many months after the current one get their
// partition ahead of time, so current events never land in DEFAULT.
const PartitionMonthsAhead = 2

const partitionPrefix = "webhook_events_p"

// inboxColumns are every column of webhook_events, in order: rows kept from
// a dropped month are copied by name, not by position.
const inboxColumns = "id, event_id, provider, type, created, livemode, account, api_version, object_type, object_id, " +
	"payload, status, attempts, next_attempt_at, last_error, lease_owner, lease_until, received_at, processed_at, shard"

// EnsurePartitions makes the partitions of the month of now and the
// PartitionMonthsAhead next ones where missing, moving any of their rows
// out of DEFAULT (webhook_events_add_month, migration 0029), and returns how
// many it made. Nothing to do on SQLite.
func EnsurePartitions(ctx context.Context, d *db.DB, now time.Time) (int, error) {
	if !d.Dialect.Partitioned() {
		return 0, nil
	}
	made := 0
	first := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i <= PartitionMonthsAhead; i++ {
		// Each month in a transaction of its own: the lock on DEFAULT is
		// held only while that month's rows move.
		var ok bool
		if err := d.Transact(ctx, func(tx *gorm.DB) error {
			// Behind a long transaction on DEFAULT, give up rather than
			// hold the inbox's writers in the lock queue; a later call
			// makes it.
			if err := tx.WithContext(ctx).Exec(`SET LOCAL lock_timeout = '5s'`).Error; err != nil {
				return err
			}
			return tx.WithContext(ctx).Raw(`SELECT webhook_events_add_month(?)`, first.AddDate(0, i, 0)).Scan(&ok).Error
		}); err != nil {
			return made, fmt.Errorf("make the inbox partition for %s: %w", first.AddDate(0, i, 0).Format("2006-01"), err)
		}
		if ok {
			made++
		}
	}
	return made, nil
}

// monthPartition is one month's partition of the inbox.
type monthPartition struct {
	Name   string
	Lo, Hi time.Time
}

// monthPartitions lists the inbox's month partitions, oldest first.
func monthPartitions(ctx context.Context, g *gorm.DB) ([]monthPartition, error) {
	var names []string
	if err := g.WithContext(ctx).Raw(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'webhook_events'::regclass`).Scan(&names).Error; err != nil {
		return nil, fmt.Errorf("list inbox partitions: %w", err)
	}
	var out []monthPartition
	for _, n := range names {
		m, err := time.Parse("2006_01", strings.TrimPrefix(n, partitionPrefix))
		if !strings.HasPrefix(n, partitionPrefix) || err != nil {
			continue // DEFAULT, or a table someone attached by hand
		}
		out = append(out, monthPartition{Name: n, Lo: m, Hi: m.AddDate(0, 1, 0)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Lo.Before(out[j].Lo) })
	return out, nil
}

// droppedMonth is what dropping one month's partition did.
type droppedMonth struct {
	deleted, kept int64
}

// dropMonth removes partition p in one transaction: the inbox is locked
// (DETACH needs it exclusively: the intake and the worker wait for the
// commit, a catalogue change and the copy of the month's few unapplied
// rows), the partition detached, its pending and dead rows copied back into
// the inbox (they land in DEFAULT, the month being gone) and the partition
// dropped. ok is false when another process dropped it first.
func dropMonth(ctx context.Context, d *db.DB, p monthPartition) (res droppedMonth, ok bool, err error) {
	err = d.Transact(ctx, func(tx *gorm.DB) error {
		tx = tx.WithContext(ctx)
		// A long transaction on the inbox must not stall the intake behind
		// this lock for long; the next run tries again.
		if err := tx.Exec(`SET LOCAL lock_timeout = '5s'`).Error; err != nil {
			return err
		}
		if err := tx.Exec(`LOCK TABLE ONLY webhook_events IN ACCESS EXCLUSIVE MODE`).Error; err != nil {
			return err
		}
		var attached bool
		if err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'webhook_events'::regclass AND inhrelid = to_regclass(?))`,
			p.Name).Scan(&attached).Error; err != nil {
			return err
		}
		if !attached {
			return nil
		}
		ok = true
		if err := tx.Raw(`SELECT count(*) FROM ` + p.Name + ` WHERE ` + appliedStatuses).Scan(&res.deleted).Error; err != nil {
			return err
		}
		if err := tx.Exec(`ALTER TABLE webhook_events DETACH PARTITION ` + p.Name).Error; err != nil {
			return err
		}
		kept := tx.Exec(`INSERT INTO webhook_events (` + inboxColumns + `) SELECT ` + inboxColumns + ` FROM ` + p.Name + ` WHERE NOT (` + appliedStatuses + `)`)
		if kept.Error != nil {
			return kept.Error
		}
		res.kept = kept.RowsAffected
		return tx.Exec(`DROP TABLE ` + p.Name).Error
	})
	if err != nil {
		return droppedMonth{}, false, fmt.Errorf("drop inbox partition %s: %w", p.Name, err)
	}
	return res, ok, nil
}
