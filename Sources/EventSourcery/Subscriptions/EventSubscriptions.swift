/// In-process callbacks that run after events are committed.
///
/// ```swift
/// var subscriptions = EventSubscriptions()
/// subscriptions.subscribe(to: UserRegistered.self) { event, stored in
///     await mailer.sendWelcome(to: event.email)
/// }
/// let store = EventStore(storage: storage, registry: registry, subscriptions: subscriptions)
/// ```
///
/// Subscribers run one after another, in registration order, inside the call that
/// appended, after the transaction committed. A subscriber's error is logged and does not
/// undo the append, nor stop other subscribers.
public struct EventSubscriptions: Sendable {
    /// A subscriber to every event.
    public typealias Handler = @Sendable (StoredEvent) async throws -> Void

    private var handlersByType: [String: [Handler]] = [:]
    private var handlersForAll: [Handler] = []

    /// No subscriptions.
    public init() {}

    /// Calls `handler` for every committed event of type `E`.
    public mutating func subscribe<E: Event>(to type: E.Type, _ handler: @escaping @Sendable (E, StoredEvent) async throws -> Void) {
        handlersByType[E.typeName, default: []].append { stored in
            if let event = stored.event as? E {
                try await handler(event, stored)
            }
        }
    }

    /// Calls `handler` for every committed event.
    public mutating func subscribeToAll(_ handler: @escaping Handler) {
        handlersForAll.append(handler)
    }

    /// Whether no subscriber is registered.
    public var isEmpty: Bool { handlersByType.isEmpty && handlersForAll.isEmpty }

    func handlers(for typeName: String) -> [Handler] {
        (handlersByType[typeName] ?? []) + handlersForAll
    }
}
