/// What ``EventStore/processOnce(consumer:eventID:_:)`` did.
public enum InboxOutcome: Sendable {
    /// The closure ran and its writes committed with the inbox entry.
    case processed([StoredEvent])
    /// The event had been processed before; the closure did not run.
    case alreadyProcessed

    /// Whether the closure ran.
    public var wasProcessed: Bool {
        if case .processed = self { return true }
        return false
    }
}
