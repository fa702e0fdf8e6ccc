public import EventSourcery
public import EventSourceryAMQP

/// The code of one bounded context that a service built with the kit runs: the event types
/// its store reads, its handlers and its projections.
///
/// ```swift
/// ContextModule(name: "shipping", eventTypes: [OrderCompleted.self, ShipmentSent.self]) { store in
///     [EventHandler(name: "ship-order", subscriptions: [EventSubscription(source: "order", type: "OrderCompleted")]) { input, batch in
///         // ...
///     }]
/// }
/// ```
public struct ContextModule: Sendable {
    /// The context name, as in the configuration file.
    public var name: String
    /// The event types the context's store decodes: its own and those it consumes.
    public var eventTypes: [any Event.Type]
    /// Makes the handlers over the context's store; their names and subscriptions must
    /// match the configuration file's `contexts.<name>.handlers`.
    public var makeHandlers: @Sendable (EventStore) -> [EventHandler]
    /// Makes the projections over the context's store, kept caught up beside the consumer
    /// (``ProjectionService``).
    public var makeProjections: @Sendable (EventStore) -> [ProjectionService]

    /// Creates a module.
    public init(
        name: String, eventTypes: [any Event.Type], projections: @escaping @Sendable (EventStore) -> [ProjectionService] = { _ in [] },
        makeHandlers: @escaping @Sendable (EventStore) -> [EventHandler]
    ) {
        self.name = name
        self.eventTypes = eventTypes
        self.makeProjections = projections
        self.makeHandlers = makeHandlers
    }

    /// A registry of ``eventTypes`` and the library's own records (``HandlerFailed``,
    /// ``EventSkipped``), which the consumer writes to the context's store.
    public var registry: EventRegistry {
        EventRegistry(eventTypes + [HandlerFailed.self, EventSkipped.self])
    }
}
