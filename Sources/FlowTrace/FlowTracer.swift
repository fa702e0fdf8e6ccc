public import EventSourcery
public import Foundation

/// Reads the stores of several bounded contexts and assembles the ``FlowTrace`` of one flow.
///
/// A flow is found by its correlation id, or by an *entity id*: the correlation id of the
/// first event of the stream `<entryCategory>-<id>` in the store of the entry context (by
/// default the order stream `order-<id>` in the `order` context).
///
/// ## Cost
///
/// Each store reads the flow's events through its index on the correlation id
/// (``EventStorage/readFlow(correlationID:)``): the time and memory follow the size of the
/// flow, not of the stores, so tracing one order in a store of millions of events reads only
/// that order's events.
///
/// Commands are part of the flow too: each store's command outbox (pending, sent and parked
/// entries; cancelled deadlines are left out) is read for the flow's commands, each shown in
/// the context it was sent to. A command hangs under the sender's event committed with it
/// (the event of the sender's store with the same cause), so its arrow starts at the sender;
/// without one, under its recorded cause. The command outbox has no index by correlation id
/// yet: it is read whole, so its size (bounded by the outbox retention) adds to a trace's cost.
///
/// The stores are read one after the other through their ordinary read APIs; SQLite stores
/// may be in use by running services (WAL mode lets readers run beside the writer).
public struct FlowTracer: Sendable {
    /// A context's name and its store.
    public struct ContextStore: Sendable {
        /// The context name, for example `order`.
        public var context: String
        /// The context's store.
        public var storage: any EventStorage

        /// Names a store.
        public init(context: String, storage: any EventStorage) {
            self.context = context
            self.storage = storage
        }
    }

    /// Where flows start and which events mark failures.
    public struct Configuration: Sendable, Hashable {
        /// The event type names that record failed attempts: `HandlerFailed`.
        public static let defaultFailureEventTypes: Set<String> = ["HandlerFailed"]

        /// The context whose store holds the entry streams. Default `order`.
        public var entryContext: String = "order"
        /// The category of the entry streams, `<category>-<id>`. Default `order`.
        public var entryCategory: String = "order"
        /// The event type names whose steps are marked as failures. Default `HandlerFailed`.
        public var failureEventTypes: Set<String> = Self.defaultFailureEventTypes

        /// Creates a configuration; every value has the documented default.
        public init(
            entryContext: String = "order",
            entryCategory: String = "order",
            failureEventTypes: Set<String> = Self.defaultFailureEventTypes
        ) {
            self.entryContext = entryContext
            self.entryCategory = entryCategory
            self.failureEventTypes = failureEventTypes
        }
    }

    /// The stores, in the order their lifelines are preferred when events tie.
    public var stores: [ContextStore]
    /// The entry streams and failure types.
    public var configuration: Configuration

    /// Creates a tracer over `stores`.
    public init(stores: [ContextStore], configuration: Configuration = Configuration()) {
        self.stores = stores
        self.configuration = configuration
    }

    /// Creates a tracer over named stores.
    public init(stores: [(context: String, storage: any EventStorage)], configuration: Configuration = Configuration()) {
        self.init(stores: stores.map { ContextStore(context: $0.context, storage: $0.storage) }, configuration: configuration)
    }

    // MARK: Tracing

    /// Traces the flow started by the entity `id`: the stream `<entryCategory>-<id>` in the
    /// entry context's store (for the demo, the order `id`).
    ///
    /// - Throws: ``FlowTraceError`` `unknownEntity` when the stream does not exist,
    ///   `unknownContext` when no store is named like ``Configuration/entryContext``,
    ///   `invalidArgument` for a bad stream id or page size; store errors.
    public func trace(entityID id: String) async throws -> FlowTrace {
        let (correlationID, stream) = try await correlationID(ofEntity: id)
        return try await trace(correlationID: correlationID, entry: "\(stream) in \(configuration.entryContext)")
    }

    /// Traces the flow of order `orderID`; the same as ``trace(entityID:)`` with the default
    /// entry context and category `order`.
    public func trace(orderID: String) async throws -> FlowTrace {
        try await trace(entityID: orderID)
    }

    /// Traces the flow of `correlationID`.
    ///
    /// - Throws: ``FlowTraceError`` `unknownCorrelation` when no store holds an event of the
    ///   flow, `invalidArgument` when there are no stores or the page size is below 1; store errors.
    public func trace(correlationID: UUID) async throws -> FlowTrace {
        try await trace(correlationID: correlationID, entry: nil)
    }

    /// The correlation id of the entity `id`: that of the first event of its entry stream
    /// (or that event's id when it has none), and the stream id.
    ///
    /// - Throws: ``FlowTraceError`` `unknownEntity` or `unknownContext`; store errors.
    public func correlationID(ofEntity id: String) async throws -> (correlationID: UUID, streamID: String) {
        guard let store = stores.first(where: { $0.context == configuration.entryContext }) else {
            throw FlowTraceError(
                .unknownContext,
                message:
                    "No store for the entry context '\(configuration.entryContext)'; the stores are: \(stores.map(\.context).joined(separator: ", "))",
                context: configuration.entryContext
            )
        }
        let stream: StreamID
        do {
            stream = try StreamID(category: configuration.entryCategory, id: id)
        } catch {
            throw FlowTraceError(.invalidArgument, message: "'\(id)' is not a valid id: \(error.message)", context: store.context)
        }
        guard let first = try await store.storage.readStream(stream, fromVersion: 1, upToVersion: 1, createdUpTo: nil).first else {
            throw FlowTraceError(
                .unknownEntity,
                message: "No \(configuration.entryCategory) '\(id)': the stream \(stream) does not exist in the \(store.context) store.",
                context: store.context, streamID: stream.rawValue
            )
        }
        return (first.event.metadata.correlationID ?? first.event.id, stream.rawValue)
    }

    /// Reads every event of the flow `correlationID` from all stores, in store order.
    ///
    /// - Returns: the flow's events and how many events were read (the same number: each
    ///   store reads only the flow's events).
    public func events(correlationID: UUID) async throws -> (events: [FlowTrace.SourceEvent], scanned: Int) {
        guard !stores.isEmpty else {
            throw FlowTraceError(.invalidArgument, message: "A trace needs at least one context store.")
        }
        var found: [FlowTrace.SourceEvent] = []
        for store in stores {
            let storeStart = found.count
            for recorded in try await store.storage.readFlow(correlationID: correlationID) {
                found.append(FlowTrace.SourceEvent(context: store.context, recorded: recorded))
            }
            for entry in try await store.storage.commandOutboxEntries(in: [.pending, .sent, .parked], limit: Int(Int32.max))
            where Self.belongs(entry.command, to: correlationID) {
                var command = entry.command
                let sibling = found[storeStart...].first { $0.recorded.event.metadata.causationID == command.metadata.causationID }
                if let sibling { command.metadata.causationID = sibling.recorded.event.id }
                found.append(try FlowTrace.SourceEvent(command: command))
            }
        }
        return (found, found.count)
    }

    private func trace(correlationID: UUID, entry: String?) async throws -> FlowTrace {
        let (events, scanned) = try await events(correlationID: correlationID)
        guard !events.isEmpty else {
            throw FlowTraceError(
                .unknownCorrelation,
                message:
                    "No event of the flow \(correlationID.uuidString.lowercased()) in the stores \(stores.map(\.context).joined(separator: ", ")) (\(scanned) events read).",
                correlationID: correlationID
            )
        }
        return FlowTrace(
            correlationID: correlationID, events: events, contextOrder: stores.map(\.context),
            failureEventTypes: configuration.failureEventTypes, scannedEventCount: scanned, entry: entry
        )
    }

    /// Whether `command` is part of the flow: it carries the correlation id.
    static func belongs(_ command: EncodedCommand, to correlationID: UUID) -> Bool {
        command.metadata.correlationID == correlationID
    }
}
