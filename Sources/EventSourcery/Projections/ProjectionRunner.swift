import Foundation

/// Runs a ``Projection`` over the store's global order from its checkpoint.
///
/// Each batch of events is applied and then the state and the checkpoint are committed
/// in one transaction, so a crash never applies an event twice or skips one.
public struct ProjectionRunner<P: Projection>: Sendable {
    /// The projection being run.
    public let projection: P
    /// The store read from and written to.
    public let store: EventStore
    /// Events read and applied per transaction.
    public let batchSize: Int

    public init(projection: P, store: EventStore, batchSize: Int = 500) {
        precondition(batchSize > 0, "batchSize must be positive")
        self.projection = projection
        self.store = store
        self.batchSize = batchSize
    }

    /// The stored state and checkpoint position, or the initial state at position 0.
    public func current() async throws -> (state: P.State, position: Int64) {
        guard let checkpoint = try await store.storage.checkpoint(named: projection.name) else {
            return (projection.initialState, 0)
        }
        do {
            return (try JSONDecoder().decode(P.State.self, from: checkpoint.state), checkpoint.position)
        } catch {
            throw EventStoreError(
                .undecodablePayload,
                message: "The stored state of projection '\(projection.name)' does not decode: \(error). "
                    + "Rebuild the projection if its State type changed.",
                underlying: error
            )
        }
    }

    /// Applies every event after the checkpoint and returns the new state.
    ///
    /// - Returns: the state, the checkpoint position and how many events were applied.
    @discardableResult
    public func catchUp() async throws -> (state: P.State, position: Int64, applied: Int) {
        var (state, position) = try await current()
        var applied = 0
        while true {
            let events = try await store.readAll(after: position, limit: batchSize)
            guard let last = events.last else { break }
            for event in events { try projection.apply(event, to: &state) }
            var batch = WriteBatch()
            batch.checkpoint = ProjectionCheckpoint(name: projection.name, position: last.position, state: try JSONEncoder().encode(state))
            try await store.commit(batch)
            position = last.position
            applied += events.count
            if events.count < batchSize { break }
        }
        return (state, position, applied)
    }

    /// Forgets the checkpoint and state, then applies every event from the start.
    @discardableResult
    public func rebuild() async throws -> (state: P.State, position: Int64, applied: Int) {
        try await store.storage.resetCheckpoint(named: projection.name)
        return try await catchUp()
    }
}
