package privacy_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/clock"
	"github.com/recourse-hq/recourse/internal/db"
	"github.com/recourse-hq/recourse/internal/dbtest"
	"github.com/recourse-hq/recourse/internal/errs"
	"github.com/recourse-hq/recourse/privacy"
)

// The audit log stays append-only: outside an erasure nothing may change;
// inside one only free text may, and nothing may be deleted.
func TestAuditLogGuardDuringErasure(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clk := clock.NewManual(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
		al := audit.New(d, clk)
		if err := al.Record(ctx, nil, audit.Entry{Action: "case.note", CaseID: "c1", ObjectID: "c1", After: audit.Marshal(map[string]string{"body": "hi Ada"})}); err != nil {
			t.Fatal(err)
		}
		must := func(name string, wantErr bool, stmts ...string) {
			t.Helper()
			err := d.Transact(ctx, func(tx *gorm.DB) error {
				for _, s := range stmts {
					if err := tx.Exec(s).Error; err != nil {
						return err
					}
				}
				return nil
			})
			if (err != nil) != wantErr {
				t.Errorf("%s: error %v, want error %v", name, err, wantErr)
			}
		}
		must("update outside an erasure", true, `UPDATE audit_log SET after = '{}'`)
		must("update free text inside an erasure", false, `INSERT INTO erasure_grants (id) VALUES ('g1')`, `UPDATE audit_log SET after = '{}', detail = 'x'`, `DELETE FROM erasure_grants`)
		must("change the action inside an erasure", true, `INSERT INTO erasure_grants (id) VALUES ('g2')`, `UPDATE audit_log SET action = 'forged'`)
		must("change the actor inside an erasure", true, `INSERT INTO erasure_grants (id) VALUES ('g3')`, `UPDATE audit_log SET actor = 'someone'`)
		must("delete inside an erasure", true, `INSERT INTO erasure_grants (id) VALUES ('g4')`, `DELETE FROM audit_log`)
		var grants int64
		d.WithContext(ctx).Raw(`SELECT count(*) FROM erasure_grants`).Scan(&grants)
		if grants != 0 {
			t.Errorf("%d erasure grants left after commit", grants)
		}
	})
}

func TestEraseRefusals(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		clk := clock.NewManual(time.Now())
		e := privacy.NewEraser(d, clk, audit.New(d, clk), nil)
		for _, r := range []privacy.Request{{CustomerID: "", Reason: "x"}, {CustomerID: "cus_1", Reason: "  "}} {
			if _, err := e.Erase(context.Background(), r); !errs.Is(err, errs.EINVALID) {
				t.Errorf("%+v: %v", r, err)
			}
		}
	})
}
