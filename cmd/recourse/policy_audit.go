package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/recourse-hq/recourse/internal/audit"
	"github.com/recourse-hq/recourse/internal/httpx"
)

// auditPolicyInForce records policy.change in the audit log, as the system,
// when the policy this process loaded differs from the last one recorded
// (the first start records it too). The policy changes only by editing its
// file and restarting; this is where such a change enters the audit log,
// with the policy before and after.
func auditPolicyInForce(ctx context.Context, l *audit.Log, p policyInForce, path string) error {
	after, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("render policy: %w", err)
	}
	sum := sha256.Sum256(after)
	digest := hex.EncodeToString(sum[:])
	last, err := l.List(ctx, audit.Filter{Action: "policy.change"}, httpx.PageRequest{Limit: 1})
	if err != nil {
		return err
	}
	var before json.RawMessage
	if len(last.Data) == 1 {
		if last.Data[0].ObjectID == digest {
			return nil
		}
		before = last.Data[0].After
	}
	source := "the built-in defaults"
	if path != "" {
		source = "policy file " + path
	}
	return l.Record(ctx, nil, audit.Entry{Action: "policy.change", ObjectType: "policy", ObjectID: digest,
		Before: before, After: after, Detail: "policy in force from " + source})
}
