public import Foundation
public import Logging
public import Tracing

/// The event store: append, publish, load and read events as Swift values.
///
/// `EventStore` wraps a storage backend (``EventStorage``) with an ``EventRegistry`` to
/// encode and decode events and ``EventSubscriptions`` to notify in-process subscribers.
///
/// ```swift
/// let store = EventStore(storage: try SQLiteEventStorage(path: "orders.sqlite"),
///                        registry: EventRegistry([OrderPlaced.self]))
/// try await store.append([EventEnvelope(OrderPlaced(orderID: "42", amount: 10))],
///                        to: "order-42", expectedVersion: .noStream)
/// let events = try await store.load("order-42")
/// ```
public struct EventStore: Sendable {
    /// The storage backend.
    public let storage: any EventStorage
    /// The registry that decodes stored events.
    public let registry: EventRegistry
    /// The in-process subscribers.
    public let subscriptions: EventSubscriptions
    /// The logger used for subscriber failures.
    public var logger: Logger
    /// The tracer of the append spans; by default the one the application bootstrapped
    /// (`InstrumentationSystem.bootstrap`) before creating the store, else the no-op tracer,
    /// with which the store starts no span at all.
    public var tracer: any Tracer

    /// Creates a store over `storage`.
    public init(
        storage: any EventStorage,
        registry: EventRegistry,
        subscriptions: EventSubscriptions = EventSubscriptions(),
        logger: Logger = Logger(label: "eventsourcery.store"),
        tracer: any Tracer = InstrumentationSystem.tracer
    ) {
        self.storage = storage
        self.registry = registry
        self.subscriptions = subscriptions
        self.logger = logger
        self.tracer = tracer
    }

    // MARK: Writing

    /// Appends events to `stream` with optimistic concurrency.
    ///
    /// - Returns: the stored events, with their stream versions and global positions.
    /// - Throws: ``EventStoreError`` `concurrencyConflict` (with expected and actual versions)
    ///   when `expectedVersion` does not hold; nothing is written then.
    @discardableResult
    public func append(
        _ events: [EventEnvelope], to stream: StreamID, expectedVersion: ExpectedVersion = .any
    ) async throws -> [StoredEvent] {
        var batch = WriteBatch()
        try batch.append(events, to: stream, expectedVersion: expectedVersion)
        return try await commit(batch)
    }

    /// Appends events to `stream` and adds an outbox entry for each, in one transaction.
    ///
    /// The outbox relay publishes the entries to the broker; an event is in the outbox
    /// if and only if it is in the store.
    @discardableResult
    public func publish(
        _ events: [EventEnvelope], to stream: StreamID, expectedVersion: ExpectedVersion = .any
    ) async throws -> [StoredEvent] {
        var batch = WriteBatch()
        try batch.publish(events, to: stream, expectedVersion: expectedVersion)
        return try await commit(batch)
    }

    /// Commits a batch atomically and notifies subscribers.
    ///
    /// - Throws: ``EventStoreError`` `concurrencyConflict` when an expected version does not
    ///   hold, `duplicateEventID` when an event id or the batch's inbox entry already exists
    ///   (use ``processOnce(consumer:eventID:_:)`` for inbox work).
    @discardableResult
    public func commit(_ batch: WriteBatch) async throws -> [StoredEvent] {
        try await traced(batch) { batch in
            switch try await storage.commit(batch) {
            case .committed(let recorded):
                return await notify(recorded, appendedFrom: batch)
            case .alreadyProcessed:
                throw EventStoreError(
                    .duplicateEventID,
                    message: "The inbox entry \(batch.inboxEntry.map { "\($0.consumer)/\($0.eventID)" } ?? "") already exists."
                )
            }
        }
    }

    /// Commits each batch atomically on its own, sharing transactions where the backend can,
    /// and notifies subscribers of what committed.
    ///
    /// Use it to commit many small independent batches at the cost of one commit, such as the
    /// inbox work for a set of deliveries. A batch that fails writes nothing and fails alone.
    ///
    /// - Returns: one result per batch, in order: ``InboxOutcome/processed(_:)`` with the
    ///   stored events, ``InboxOutcome/alreadyProcessed`` when the batch's inbox entry existed
    ///   (nothing written), or the batch's error (``EventStoreError`` `concurrencyConflict`,
    ///   `duplicateEventID`, `storageUnavailable`, ...).
    public func commitEach(_ batches: [WriteBatch]) async -> [Result<InboxOutcome, any Error>] {
        var batches = batches
        let spans = batches.indices.map { startAppendSpan(&batches[$0]) }
        var results: [Result<InboxOutcome, any Error>] = []
        results.reserveCapacity(batches.count)
        for ((batch, span), result) in zip(zip(batches, spans), await storage.commitEach(batches)) {
            switch result {
            case .success(.committed(let recorded)):
                endAppendSpan(span)
                results.append(.success(.processed(await notify(recorded, appendedFrom: batch))))
            case .success(.alreadyProcessed):
                endAppendSpan(span)
                results.append(.success(.alreadyProcessed))
            case .failure(let error):
                endAppendSpan(span, error: error)
                results.append(.failure(error))
            }
        }
        return results
    }

    /// The entries of `entries` already recorded in the inbox, looked up together.
    public func processedInboxEntries(_ entries: [InboxEntry]) async throws -> Set<InboxEntry> {
        guard !entries.isEmpty else { return [] }
        return try await storage.processedInboxEntries(entries)
    }

    /// Runs `body` at most once per consumer and event id.
    ///
    /// The inbox entry and the writes `body` adds to the batch commit in one transaction,
    /// so a redelivered event changes nothing. The inbox has no expiry: a duplicate arriving
    /// any time later is still caught. When two deliveries race, one commits and the other
    /// returns ``InboxOutcome/alreadyProcessed``.
    ///
    /// - Throws: whatever `body` throws (nothing is written then), or a store error.
    public func processOnce(
        consumer: String,
        eventID: UUID,
        _ body: (inout WriteBatch) async throws -> Void
    ) async throws -> InboxOutcome {
        if try await storage.isProcessed(consumer: consumer, eventID: eventID) {
            return .alreadyProcessed
        }
        var batch = WriteBatch()
        try await body(&batch)
        batch.inboxEntry = InboxEntry(consumer: consumer, eventID: eventID)
        return try await traced(batch) { batch in
            switch try await storage.commit(batch) {
            case .committed(let recorded):
                return .processed(await notify(recorded, appendedFrom: batch))
            case .alreadyProcessed:
                return .alreadyProcessed
            }
        }
    }

    // MARK: Reading

    /// Loads the events of `stream` in stream order.
    ///
    /// - Parameters:
    ///   - upToVersion: stop after this version (the stream as it was at that version).
    ///   - asOf: only events created at or before this time (the stream as it was then).
    /// - Returns: the decoded events; empty when the stream does not exist.
    public func load(_ stream: StreamID, fromVersion: Int64 = 1, upToVersion: Int64? = nil, asOf: Date? = nil) async throws -> [StoredEvent]
    {
        let recorded = try await storage.readStream(stream, fromVersion: fromVersion, upToVersion: upToVersion, createdUpTo: asOf)
        return try recorded.map { event throws(EventStoreError) in try registry.decode(event) }
    }

    /// Reads up to `limit` events in global order after `position` (0 reads from the start).
    public func readAll(after position: Int64 = 0, limit: Int = 1000) async throws -> [StoredEvent] {
        try await readAllRecorded(after: position, limit: limit).map { event throws(EventStoreError) in try registry.decode(event) }
    }

    /// Reads up to `limit` encoded events in global order after `position`, without decoding.
    public func readAllRecorded(after position: Int64 = 0, limit: Int = 1000) async throws -> [RecordedEvent] {
        guard limit > 0 else {
            throw EventStoreError(.invalidArgument, message: "readAll needs a positive limit, got \(limit).")
        }
        return try await storage.readAll(after: position, limit: limit)
    }

    /// The version of `stream`, 0 when it does not exist.
    public func streamVersion(_ stream: StreamID) async throws -> Int64 {
        try await storage.streamVersion(stream)
    }

    /// Whether `stream` has at least one event.
    public func streamExists(_ stream: StreamID) async throws -> Bool {
        try await storage.streamVersion(stream) > 0
    }

    // MARK: Subscriptions

    private func notify(_ recorded: [RecordedEvent], appendedFrom batch: WriteBatch) async -> [StoredEvent] {
        // The envelopes the caller appended are at hand: pair them with their records
        // instead of decoding the JSON again. Encoded appends are decoded.
        let envelopes = batch.appends.flatMap { append in
            append.envelopes ?? Array(repeating: nil, count: append.events.count)
        }
        var stored: [StoredEvent] = []
        stored.reserveCapacity(recorded.count)
        for (event, envelope) in zip(recorded, envelopes) {
            if let envelope {
                stored.append(
                    StoredEvent(streamID: event.streamID, streamVersion: event.streamVersion, position: event.position, envelope: envelope))
            } else if let decoded = try? registry.decode(event) {
                stored.append(decoded)
            } else {
                logger.debug(
                    "Appended event has no registered type; subscribers skip it",
                    metadata: [
                        "es.event_id": "\(event.event.id)", "es.type": "\(event.event.typeName)",
                    ])
            }
        }
        guard !subscriptions.isEmpty else { return stored }
        for event in stored {
            for handler in subscriptions.handlers(for: event.envelope.typeName) {
                do {
                    try await handler(event)
                } catch {
                    logger.error(
                        "Subscriber failed; the append stays committed",
                        metadata: [
                            "es.stream": "\(event.streamID)", "es.event_id": "\(event.envelope.id)",
                            "es.type": "\(event.envelope.typeName)", "error": "\(error)",
                        ])
                }
            }
        }
        return stored
    }
}
