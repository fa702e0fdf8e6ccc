/// How many rows a store keeps, table by table: what retention policies shrink and what an
/// operator watches.
public struct StoreSizes: Sendable, Hashable {
    /// Recorded events (never pruned: the events are the source of truth).
    public var events: Int
    /// Outbox entries per state; published ones are pruned by the relay's retention.
    public var outbox: OutboxCounts
    /// Inbox entries of every consumer of the store; pruned by the consumer's inbox retention.
    public var inboxEntries: Int
    /// Events held behind a failure (waiting for a retry or parked).
    public var heldEvents: Int

    public init(events: Int, outbox: OutboxCounts, inboxEntries: Int, heldEvents: Int) {
        self.events = events
        self.outbox = outbox
        self.inboxEntries = inboxEntries
        self.heldEvents = heldEvents
    }
}
