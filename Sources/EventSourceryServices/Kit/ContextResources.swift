public import EventSourcery

/// What the kit hands a ``ContextModule``'s handler factories: the context's store and its
/// deadlines, resolved from the module's defaults and `contexts.<name>.deadlines` of the file.
public struct ContextResources: Sendable {
    /// The context's store.
    public var store: EventStore
    /// The deadlines by name.
    public var deadlines: [String: Duration]

    /// Creates the resources.
    public init(store: EventStore, deadlines: [String: Duration]) {
        self.store = store
        self.deadlines = deadlines
    }

    /// The deadline `name`; the module declares it (``ContextModule/deadlines``), so the kit
    /// has resolved it.
    public func deadline(_ name: String) -> Duration {
        guard let duration = deadlines[name] else { preconditionFailure("the module declares no deadline '\(name)'") }
        return duration
    }
}
