/// A read model built by folding the store's global order into a state.
///
/// ```swift
/// struct RevenueProjection: Projection {
///     let name = "revenue"
///     var initialState: Int { 0 }
///     func apply(_ event: StoredEvent, to total: inout Int) {
///         if let placed = event.event as? OrderPlaced { total += placed.amount }
///     }
/// }
/// ```
///
/// A ``ProjectionRunner`` feeds it events after its checkpoint and stores the new state
/// and checkpoint atomically.
public protocol Projection: Sendable {
    /// The projection's state, stored with its checkpoint.
    associatedtype State: Codable & Sendable

    /// The projection's unique name; its checkpoint is stored under it.
    var name: String { get }

    /// The state before any event.
    var initialState: State { get }

    /// Folds one event into the state.
    func apply(_ event: StoredEvent, to state: inout State) throws
}
