/// A consistency boundary whose state is rebuilt from its own event stream.
///
/// An aggregate applies events to its state in ``apply(_:)`` and, in its command
/// methods, checks invariants and calls ``record(_:)`` with the new events. The
/// ``Repository`` loads it, runs a command, and saves what it recorded with
/// optimistic concurrency.
///
/// ```swift
/// struct Order: Aggregate {
///     static let category = "order"
///     let id: String
///     var isPaid = false
///     var uncommittedEvents: [any Event] = []
///
///     init(id: String) { self.id = id }
///
///     mutating func apply(_ event: any Event) {
///         if event is OrderPaid { isPaid = true }
///     }
///
///     mutating func pay() throws {
///         guard !isPaid else { throw OrderError.alreadyPaid }
///         record(OrderPaid(orderID: id))
///     }
/// }
/// ```
public protocol Aggregate: Sendable {
    /// The stream category; an aggregate with id `42` lives in stream `<category>-42`.
    static var category: String { get }

    /// The aggregate's id, unique within its category.
    var id: String { get }

    /// Creates the aggregate in its initial state, before any event.
    init(id: String)

    /// Changes the state for one event. Must not fail: events are facts.
    mutating func apply(_ event: any Event)

    /// Events recorded since the aggregate was loaded; the repository saves and clears them.
    var uncommittedEvents: [any Event] { get set }
}

extension Aggregate {
    /// Applies `event` and records it to be saved.
    public mutating func record(_ event: some Event) {
        apply(event)
        uncommittedEvents.append(event)
    }

    /// The stream id of the aggregate with `id`.
    public static func streamID(for id: String) throws(EventStoreError) -> StreamID {
        try StreamID(category: category, id: id)
    }
}
