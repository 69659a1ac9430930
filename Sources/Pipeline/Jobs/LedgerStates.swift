import GRDB

// The ledger's shard states and attempt outcomes, stored as their raw strings (the schema's
// CHECK constraints list the same values).
//
// A shard and its attempts (one attempt per lease; `attempts` counts them, `attempt_base`
// is the count at the last `retry`, so `attempts - attempt_base` is the budget used):
//
//                 leaseNext (attempt n+1 "running", lease row)
//      ┌─────────┐ ─────────────────────────────────────────▶ ┌────────┐
//      │ pending │                                             │ leased │
//      └─────────┘ ◀───────────────────────────────────────── └────────┘
//        ▲   ▲      attempt ends without a result, budget left:   │  │
//        │   │      "failed"   FAILED (retryable) / RESULT whose  │  │ RESULT verified,
//        │   │                 outputs are not exactly the        │  │ lease current:
//        │   │                 shard's expected files             │  │ attempt "done"
//        │   │      "expired"  lease past its deadline            │  ▼
//        │   │      "released" worker gone / dismissed (no budget │ ┌──────┐
//        │   │                 used) / lease sent to a dead       │ │ done │ (final; outputs
//        │   │                 connection of a worker that came   │ └──────┘  recorded)
//        │   │                 back (no budget used)              │
//        │   │      "cancelled" job cancelled (shard back to      │
//        │   │                 pending, job no longer running)    │
//        │   │                                                    │ same endings, budget used
//        │   │  retry (new budget)  ┌────────┐                    │ up or not retryable
//        │   └───────────────────── │ failed │ ◀──────────────────┘
//        │                          └────────┘   (last_error = the reason)
//        └── cancel: leased → pending
//
// An attempt is "running" exactly while its lease row exists; every ending removes the
// lease in the same transaction. A report (RESULT/FAILED) that names anything but the
// current lease changes nothing (stale, or a duplicate of an attempt already ended).

extension ShardState: DatabaseValueConvertible {}

/// How one attempt (one lease of a shard) ended; `running` while its lease holds.
public enum AttemptOutcome: String, Codable, CaseIterable, DatabaseValueConvertible {
    case running, done, failed, expired, released, cancelled
}
