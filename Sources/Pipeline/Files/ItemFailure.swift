import Foundation

/// A per-item failure (a corrupt image, say): recorded, never fatal to the shard.
public struct ItemFailure: Codable, Equatable {
    public var item: Int
    public var path: String
    public var reason: String
    public init(item: Int, path: String, reason: String) { self.item = item; self.path = path; self.reason = reason }
}
