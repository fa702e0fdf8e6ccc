import Foundation

/// Loads aggregates from their streams and saves the events their commands record.
///
/// ```swift
/// let orders = Repository<Order>(store: store, saveMode: .publish)
/// try await orders.new("42") { order in try order.place(amount: 10) }
/// try await orders.update("42") { order in try order.pay() }
/// ```
///
/// Saving checks the version the aggregate was loaded at, so two concurrent commands on
/// one aggregate cannot both win: the loser gets ``EventStoreError/Code/concurrencyConflict``
/// and nothing of its work is written.
public struct Repository<A: Aggregate>: Sendable {
    /// How recorded events are saved.
    public enum SaveMode: Sendable {
        /// Append to the stream only.
        case append
        /// Append and add outbox entries in the same transaction, for the relay to publish.
        case publish
    }

    /// An aggregate with the stream version it was loaded at.
    public struct Loaded: Sendable {
        public var aggregate: A
        /// The stream version the aggregate reflects; 0 for a new aggregate.
        public var version: Int64
    }

    private struct SnapshotStrategy: Sendable {
        var frequency: Int64
        var encode: @Sendable (A) throws -> Data
        var decode: @Sendable (String, Data) throws -> A
        var schemaVersion: Int
    }

    /// The store the repository reads and writes.
    public let store: EventStore
    /// How recorded events are saved.
    public let saveMode: SaveMode
    private let snapshots: SnapshotStrategy?

    /// Creates a repository.
    public init(store: EventStore, saveMode: SaveMode = .append) {
        self.store = store
        self.saveMode = saveMode
        self.snapshots = nil
    }

    // MARK: Loading

    /// Loads the aggregate `id`, or returns `nil` when its stream does not exist.
    public func load(_ id: String) async throws -> Loaded? {
        let stream = try A.streamID(for: id)
        var aggregate = A(id: id)
        var version: Int64 = 0
        if let snapshots, let snapshot = try await store.storage.latestSnapshot(of: stream),
            snapshot.schemaVersion == snapshots.schemaVersion,
            let restored = try? snapshots.decode(id, snapshot.state)
        {
            aggregate = restored
            version = snapshot.version
        }
        for event in try await store.load(stream, fromVersion: version + 1) {
            aggregate.apply(event.event)
            version = event.streamVersion
        }
        return version == 0 ? nil : Loaded(aggregate: aggregate, version: version)
    }

    // MARK: Commands

    /// Creates the aggregate `id`, runs `command` on it and saves what it recorded.
    ///
    /// - Throws: ``EventStoreError`` `concurrencyConflict` when the aggregate already exists,
    ///   or what `command` throws (nothing is saved then).
    @discardableResult
    public func new<Result>(
        _ id: String,
        metadata: EventMetadata = EventMetadata(),
        _ command: (inout A) async throws -> Result
    ) async throws -> Result {
        var batch = WriteBatch()
        let result = try await new(id, metadata: metadata, in: &batch, command)
        try await save(batch)
        return result
    }

    /// Loads the aggregate `id`, runs `command` on it and saves what it recorded.
    ///
    /// - Throws: ``EventStoreError`` `streamNotFound` when the aggregate does not exist,
    ///   `concurrencyConflict` when another writer saved it since it was loaded, or what
    ///   `command` throws (nothing is saved then).
    @discardableResult
    public func update<Result>(
        _ id: String,
        metadata: EventMetadata = EventMetadata(),
        _ command: (inout A) async throws -> Result
    ) async throws -> Result {
        var batch = WriteBatch()
        let result = try await update(id, metadata: metadata, in: &batch, command)
        try await save(batch)
        return result
    }

    /// Like ``new(_:metadata:_:)``, but adds the recorded events to `batch` instead of
    /// saving, for work that commits together, such as an inbox handler. A snapshot that
    /// falls due is added to the batch too.
    @discardableResult
    public func new<Result>(
        _ id: String,
        metadata: EventMetadata = EventMetadata(),
        in batch: inout WriteBatch,
        _ command: (inout A) async throws -> Result
    ) async throws -> Result {
        var loaded = Loaded(aggregate: A(id: id), version: 0)
        let result = try await command(&loaded.aggregate)
        try stage(loaded, expectedVersion: .noStream, metadata: metadata, in: &batch)
        return result
    }

    /// Like ``update(_:metadata:_:)``, but adds the recorded events to `batch` instead of saving.
    @discardableResult
    public func update<Result>(
        _ id: String,
        metadata: EventMetadata = EventMetadata(),
        in batch: inout WriteBatch,
        _ command: (inout A) async throws -> Result
    ) async throws -> Result {
        guard var loaded = try await load(id) else {
            let stream = try A.streamID(for: id)
            throw EventStoreError(
                .streamNotFound,
                message: "No \(A.category) with id '\(id)' exists (stream '\(stream)' is empty). Create it with new(_:) first.",
                streamID: stream
            )
        }
        let result = try await command(&loaded.aggregate)
        try stage(loaded, expectedVersion: .exact(loaded.version), metadata: metadata, in: &batch)
        return result
    }

    private func save(_ batch: WriteBatch) async throws {
        guard !batch.isEmpty else { return }
        try await store.commit(batch)
    }

    /// Adds the aggregate's recorded events, and a snapshot when one is due, to `batch`.
    private func stage(_ loaded: Loaded, expectedVersion: ExpectedVersion, metadata: EventMetadata, in batch: inout WriteBatch) throws {
        let recorded = loaded.aggregate.uncommittedEvents
        guard !recorded.isEmpty else { return }
        let stream = try A.streamID(for: loaded.aggregate.id)
        var metadata = metadata
        var envelopes: [EventEnvelope] = []
        envelopes.reserveCapacity(recorded.count)
        for event in recorded {
            let envelope = EventEnvelope(event, metadata: metadata)
            // Events of one command share a flow: the first one starts it when no
            // correlation id was given.
            metadata.correlationID = envelope.metadata.correlationID
            envelopes.append(envelope)
        }
        switch saveMode {
        case .append: try batch.append(envelopes, to: stream, expectedVersion: expectedVersion)
        case .publish: try batch.publish(envelopes, to: stream, expectedVersion: expectedVersion)
        }
        let newVersion = loaded.version + Int64(recorded.count)
        guard let snapshots, newVersion / snapshots.frequency > loaded.version / snapshots.frequency else { return }
        batch.snapshots.append(
            Snapshot(
                streamID: stream, version: newVersion, state: try snapshots.encode(loaded.aggregate), schemaVersion: snapshots.schemaVersion
            )
        )
    }
}

extension Repository where A: SnapshottingAggregate {
    /// Creates a repository that saves a snapshot every `snapshotFrequency` events and loads
    /// from the latest snapshot plus the events after it.
    public init(store: EventStore, saveMode: SaveMode = .append, snapshotFrequency: Int) {
        precondition(snapshotFrequency > 0, "snapshotFrequency must be positive")
        self.store = store
        self.saveMode = saveMode
        self.snapshots = SnapshotStrategy(
            frequency: Int64(snapshotFrequency),
            encode: { aggregate in try JSONEncoder().encode(aggregate.snapshotState) },
            decode: { id, data in A(id: id, snapshotState: try JSONDecoder().decode(A.SnapshotState.self, from: data)) },
            schemaVersion: A.snapshotSchemaVersion
        )
    }
}
