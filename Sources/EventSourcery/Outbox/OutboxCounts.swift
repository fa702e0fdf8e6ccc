/// Outbox entries per state.
public struct OutboxCounts: Sendable, Hashable {
    public var pending: Int
    public var parked: Int
    public var published: Int

    public init(pending: Int, parked: Int, published: Int) {
        self.pending = pending
        self.parked = parked
        self.published = published
    }
}
