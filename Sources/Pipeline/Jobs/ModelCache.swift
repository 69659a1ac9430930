import Foundation
import PipelineTensor

/// The one model an executor keeps loaded across shards, keyed by its spec. Shards of one
/// worker run on several threads at once (`--credits` > 1): a load happens under the lock,
/// so two shards that want the same model load it once and share it (the models' forward
/// passes may run concurrently), and a shard that wants another key replaces the slot
/// without disturbing the model a running shard already holds.
final class ModelCache<Model>: @unchecked Sendable {  // safe: `slot` is only touched under `Locked`
    private let slot = Locked<(key: String, model: Model)?>(nil)

    /// The cached model for `key`, or the one `load` makes (then cached).
    func model(_ key: String, load: () throws -> Model) rethrows -> Model {
        try slot.withLock { slot in
            if let s = slot, s.key == key { return s.model }
            let m = try load()
            slot = (key, m)
            return m
        }
    }

    /// The key held now, if any (reported to the coordinator in READY).
    var key: String? { slot.withLock { $0?.key } }
}
