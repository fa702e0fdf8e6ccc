public import EventSourcery
public import EventSourceryAMQP

/// The code of one bounded context that a service built with the kit runs: the event types
/// its store reads, its event handlers, its command handlers, the deadlines of its process
/// managers and its projections.
///
/// ```swift
/// ContextModule(name: "shipping", eventTypes: [OrderCompleted.self, ShipmentSent.self]) { store in
///     [EventHandler(name: "ship-order", subscriptions: [EventSubscription(source: "order", type: "OrderCompleted")]) { input, batch in
///         // ...
///     }]
/// }
/// ```
///
/// A context that answers commands or hosts a process manager uses
/// ``init(name:eventTypes:deadlines:projections:commandHandlers:eventHandlers:)``: the kit
/// runs a `CommandConsumer` on `<context>.commands` beside the `ContextConsumer`, and gives
/// the factories the deadlines resolved from `contexts.<name>.deadlines` of the file.
public struct ContextModule: Sendable {
    /// The context name, as in the configuration file.
    public var name: String
    /// The event types the context's store decodes: its own and those it consumes.
    public var eventTypes: [any Event.Type]
    /// The named deadlines the context's process managers schedule, with their defaults;
    /// `contexts.<name>.deadlines.<deadline>` of the file (seconds) overrides them.
    public var deadlines: [String: Duration]
    /// Makes the event handlers; their names and subscriptions must match the configuration
    /// file's `contexts.<name>.handlers`.
    public var makeEventHandlers: @Sendable (ContextResources) -> [EventHandler]
    /// Makes the command handlers; a module with any needs `contexts.<name>.accepts_commands: true`.
    public var makeCommandHandlers: @Sendable (ContextResources) -> [CommandHandler]
    /// Makes the projections over the context's store, kept caught up beside the consumer
    /// (``ProjectionService``).
    public var makeProjections: @Sendable (EventStore) -> [ProjectionService]

    /// Creates a module of event handlers only.
    public init(
        name: String, eventTypes: [any Event.Type], projections: @escaping @Sendable (EventStore) -> [ProjectionService] = { _ in [] },
        makeHandlers: @escaping @Sendable (EventStore) -> [EventHandler]
    ) {
        self.init(
            name: name, eventTypes: eventTypes, deadlines: [:], projections: projections, commandHandlers: { _ in [] },
            eventHandlers: { makeHandlers($0.store) })
    }

    /// Creates a module with command handlers, process-manager deadlines and event handlers.
    ///
    /// - Parameters:
    ///   - deadlines: The deadlines the code schedules, by name, with their defaults.
    ///   - commandHandlers: Makes the handlers of the commands the context accepts.
    ///   - eventHandlers: Makes the handlers of the events the context subscribes to.
    public init(
        name: String, eventTypes: [any Event.Type], deadlines: [String: Duration],
        projections: @escaping @Sendable (EventStore) -> [ProjectionService] = { _ in [] },
        commandHandlers: @escaping @Sendable (ContextResources) -> [CommandHandler],
        eventHandlers: @escaping @Sendable (ContextResources) -> [EventHandler]
    ) {
        self.name = name
        self.eventTypes = eventTypes
        self.deadlines = deadlines
        self.makeProjections = projections
        self.makeCommandHandlers = commandHandlers
        self.makeEventHandlers = eventHandlers
    }

    /// The event handlers over `store`, with the default deadlines.
    public func makeHandlers(_ store: EventStore) -> [EventHandler] {
        makeEventHandlers(ContextResources(store: store, deadlines: deadlines))
    }

    /// A registry of ``eventTypes`` and the library's own records (``HandlerFailed``,
    /// ``EventSkipped``, ``HandlerSkipped``, ``HandlerRerun``, ``CommandRejected``,
    /// ``DeadlineChanged``), which the consumers and process managers write to the context's store.
    public var registry: EventRegistry {
        let own: [any Event.Type] = [
            HandlerFailed.self, EventSkipped.self, HandlerSkipped.self, HandlerRerun.self, CommandRejected.self, DeadlineChanged.self,
        ]
        let names = Set(eventTypes.map { $0.typeName })
        return EventRegistry(eventTypes + own.filter { !names.contains($0.typeName) })
    }
}
