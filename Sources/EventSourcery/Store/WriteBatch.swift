public import Foundation

/// Writes that a storage backend commits in one transaction, all or nothing.
///
/// A batch appends events to one or more streams (each with its own expected version,
/// optionally adding outbox entries), and may record an inbox entry, a projection
/// checkpoint and aggregate snapshots. ``EventStore/commit(_:)`` commits it; the inbox and repository APIs build
/// batches for you.
public struct WriteBatch: Sendable {
    /// Events to append to one stream.
    public struct StreamAppend: Sendable {
        public var streamID: StreamID
        public var expectedVersion: ExpectedVersion
        public var events: [EncodedEvent]
        /// Whether each event also gets an outbox entry (``EventStore/publish(_:to:expectedVersion:)``).
        public var publishes: Bool
        /// The envelopes the events were encoded from, when the caller appended envelopes.
        var envelopes: [EventEnvelope?]?
    }

    /// The appends, in the order they were added.
    public private(set) var appends: [StreamAppend] = []
    /// The inbox entry to record; the commit fails with "already processed" when it exists.
    public var inboxEntry: InboxEntry?
    /// The projection checkpoint to store.
    public var checkpoint: ProjectionCheckpoint?
    /// Snapshots to store, each replacing older snapshots of its stream.
    public var snapshots: [Snapshot] = []
    /// Commands to add to the command outbox, in the order they were sent.
    public private(set) var commands: [EncodedCommand] = []
    /// Ids of pending commands (deadlines) to cancel: they are not sent when still pending.
    public private(set) var cancelledCommands: [UUID] = []

    /// An empty batch.
    public init() {}

    /// Whether the batch writes nothing.
    public var isEmpty: Bool {
        appends.allSatisfy(\.events.isEmpty) && inboxEntry == nil && checkpoint == nil && snapshots.isEmpty && commands.isEmpty
            && cancelledCommands.isEmpty
    }

    /// Adds events to append to `stream`.
    public mutating func append(
        _ events: [EventEnvelope], to stream: StreamID, expectedVersion: ExpectedVersion = .any
    ) throws(EventStoreError) {
        try add(events, to: stream, expectedVersion: expectedVersion, publishes: false)
    }

    /// Adds events to append to `stream`, each with an outbox entry for the relay.
    public mutating func publish(
        _ events: [EventEnvelope], to stream: StreamID, expectedVersion: ExpectedVersion = .any
    ) throws(EventStoreError) {
        try add(events, to: stream, expectedVersion: expectedVersion, publishes: true)
    }

    /// Adds already encoded events.
    public mutating func append(encoded events: [EncodedEvent], to stream: StreamID, expectedVersion: ExpectedVersion, publishes: Bool) {
        appends.append(StreamAppend(streamID: stream, expectedVersion: expectedVersion, events: events, publishes: publishes))
    }

    /// Makes the events of this batch that name no cause (no causation id) consequences of
    /// `cause`, except those whose ids are in `earlier`: their causation id becomes the
    /// cause's id, their correlation id the cause's where they started a flow of their own
    /// (their correlation id is their own id, the default of ``EventEnvelope``), and their
    /// trace context the cause's where they carry none. A consumer calls it for what a handler
    /// appended, so that a plain `EventEnvelope(x)` continues the consumed event's flow.
    public mutating func inheritCausation(from cause: EventEnvelope, except earlier: Set<UUID> = []) {
        let caused = EventMetadata.causedBy(cause)
        updateMetadata { metadata, id in
            guard metadata.causationID == nil, !earlier.contains(id) else { return }
            metadata.causationID = caused.causationID
            if metadata.correlationID == nil || metadata.correlationID == id { metadata.correlationID = caused.correlationID }
            if metadata.traceContext.isEmpty { metadata.traceContext = caused.traceContext }
        }
    }

    /// Sets the trace context of the events and commands of this batch, except those whose ids
    /// are in `earlier`, to `fields` (nothing changes when `fields` is empty). A consumer calls
    /// it with the context of a handler's span for what the handler appended and sent, so that
    /// the next hop's spans are children of that handler run.
    public mutating func setTraceContext(_ fields: [String: String], except earlier: Set<UUID> = []) {
        guard !fields.isEmpty else { return }
        updateMetadata(includingCommands: true) { metadata, id in
            if !earlier.contains(id) { metadata.traceContext = fields }
        }
    }

    /// Gives `fields` as trace context to the events and commands of this batch that carry none;
    /// `fields` is not evaluated when all of them carry one (a handler run's writes).
    mutating func fillTraceContext(_ fields: @autoclosure () -> [String: String]) {
        guard
            commands.contains(where: { $0.metadata.traceContext.isEmpty })
                || appends.contains(where: { $0.events.contains { $0.metadata.traceContext.isEmpty } })
        else { return }
        let fields = fields()
        guard !fields.isEmpty else { return }
        updateMetadata(includingCommands: true) { metadata, _ in
            if metadata.traceContext.isEmpty { metadata.traceContext = fields }
        }
    }

    /// The trace context of the first event of the batch that carries one; empty when none does.
    var firstTraceContext: [String: String] {
        for append in appends {
            if let event = append.events.first(where: { !$0.metadata.traceContext.isEmpty }) { return event.metadata.traceContext }
        }
        return [:]
    }

    /// Applies `update` to the metadata of every event of the batch (and of its envelope) and,
    /// with `includingCommands`, of every command it sends.
    private mutating func updateMetadata(includingCommands: Bool = false, _ update: (inout EventMetadata, UUID) -> Void) {
        if includingCommands {
            for index in commands.indices { update(&commands[index].metadata, commands[index].id) }
        }
        for appendIndex in appends.indices {
            for eventIndex in appends[appendIndex].events.indices {
                let id = appends[appendIndex].events[eventIndex].id
                update(&appends[appendIndex].events[eventIndex].metadata, id)
                if var envelope = appends[appendIndex].envelopes?[eventIndex] {
                    update(&envelope.metadata, id)
                    appends[appendIndex].envelopes?[eventIndex] = envelope
                }
            }
        }
    }

    /// The ids of the events the batch appends.
    public var eventIDs: Set<UUID> { Set(appends.flatMap { $0.events.map(\.id) }) }

    /// Sends `command` to the context `target` through this store's command outbox: it
    /// commits with the rest of the batch, and the relay delivers it to `<target>.commands`
    /// once it is due.
    ///
    /// - Parameters:
    ///   - id: The command's id, its dedupe key at the receiver.
    ///   - metadata: Correlation and causation; pass the cause's metadata
    ///     (``CommandEnvelope/causedMetadata``, ``EventMetadata/causedBy(_:)``) to keep the flow.
    ///   - dueAt: When to deliver it; `nil` for now. A later time makes it a deadline, which
    ///     ``cancelCommand(_:)`` can still cancel until it is sent.
    public mutating func send(
        _ command: some Command, to target: String, id: UUID = .timeOrdered(), metadata: EventMetadata = EventMetadata(),
        at dueAt: Date? = nil
    ) throws(EventStoreError) {
        commands.append(try CommandRegistry.encode(CommandEnvelope(command, id: id, metadata: metadata), to: target, dueAt: dueAt))
    }

    /// Adds an already wrapped command; see ``send(_:to:id:metadata:at:)``.
    public mutating func send(_ envelope: CommandEnvelope, to target: String, at dueAt: Date? = nil) throws(EventStoreError) {
        commands.append(try CommandRegistry.encode(envelope, to: target, dueAt: dueAt))
    }

    /// Cancels the pending command `id` (typically a deadline) in the same transaction: it is
    /// never sent. A command already sent stays sent; receivers that must ignore a late one
    /// check their own state.
    public mutating func cancelCommand(_ id: UUID) {
        cancelledCommands.append(id)
    }

    /// The number of events the batch appends.
    public var eventCount: Int { appends.reduce(0) { $0 + $1.events.count } }

    private mutating func add(
        _ events: [EventEnvelope], to stream: StreamID, expectedVersion: ExpectedVersion, publishes: Bool
    ) throws(EventStoreError) {
        var encoded: [EncodedEvent] = []
        encoded.reserveCapacity(events.count)
        for event in events { encoded.append(try EventRegistry.encode(event)) }
        appends.append(
            StreamAppend(streamID: stream, expectedVersion: expectedVersion, events: encoded, publishes: publishes, envelopes: events))
    }
}
