public import EventSourcery
public import Foundation

/// The causal timeline of one flow across the stores of several bounded contexts.
///
/// A flow is every event that carries one correlation id. ``steps`` lists them in causal
/// order: each event after the event that caused it (its causation id), across contexts,
/// whatever the clocks of the machines that wrote them say. Events whose cause is not part
/// of the trace are roots.
///
/// Build one with ``FlowTracer`` (which reads the stores), with the shortcuts
/// ``trace(orderID:in:configuration:)`` and ``trace(correlationID:in:configuration:)``, or
/// from events at hand with ``init(correlationID:events:contextOrder:failureEventTypes:scannedEventCount:entry:)``.
/// Render it with ``renderText(options:)``, ``renderHTML()``, ``renderSVG()`` or ``renderJSON()``.
///
/// ```swift
/// let trace = try await FlowTrace.trace(orderID: "42", in: [
///     (context: "order", storage: orderStorage),
///     (context: "payment", storage: paymentStorage),
///     (context: "invoice", storage: invoiceStorage),
/// ])
/// print(trace.renderText())
/// try trace.renderHTML().write(toFile: "flow.html", atomically: true, encoding: .utf8)
/// ```
public struct FlowTrace: Sendable, Hashable, Codable {
    /// The flow's correlation id.
    public var correlationID: UUID
    /// The events of the flow in causal order.
    public var steps: [Step]
    /// The contexts that hold events of the flow, in the order they first appear in ``steps``.
    public var contexts: [String]
    /// How many events were read from the stores to find the flow (the cost of the scan).
    public var scannedEventCount: Int
    /// What the trace was asked for, for example `order-42 in order`; `nil` for a trace by
    /// correlation id.
    public var entry: String?

    /// An event read from a context's store, the input of a trace; or a command a context sent,
    /// recorded as the event-like step of the context that handles it.
    public struct SourceEvent: Sendable, Hashable {
        /// The context whose store holds the event; for a command, its target.
        public var context: String
        /// The recorded event; for a command, its id, type, time, metadata and payload in the
        /// stream `<target>.commands`.
        public var recorded: RecordedEvent
        /// Whether this is a command (from a sender's command outbox).
        public var isCommand: Bool

        /// Pairs an event with its context.
        public init(context: String, recorded: RecordedEvent, isCommand: Bool = false) {
            self.context = context
            self.recorded = recorded
            self.isCommand = isCommand
        }

        /// A command from a sender's command outbox, placed in its target's context: its cause
        /// is the sender's event, so the trace draws it as an arrow from sender to target.
        public init(command: EncodedCommand) throws {
            self.init(
                context: command.target,
                recorded: RecordedEvent(
                    streamID: try StreamID("\(command.target).commands"), streamVersion: 0, position: 0,
                    event: EncodedEvent(
                        id: command.id, typeName: command.typeName, schemaVersion: command.schemaVersion, createdAt: command.createdAt,
                        metadata: command.metadata, payload: command.payload)),
                isCommand: true)
        }
    }

    /// Orders `events` causally and computes the delays of each step.
    ///
    /// Events are deduplicated by id (the first occurrence in `events` wins). Causal order is
    /// a topological order over causation links: a cause comes before its effects. Among the
    /// events that may come next, the one created first comes first; ties are broken by the
    /// context's place in `contextOrder` (then its name), then by the store position.
    /// Events whose causation id names no event of `events` are roots; a causation cycle
    /// (impossible with unique ids, but tolerated) is broken at its earliest event.
    ///
    /// - Parameters:
    ///   - correlationID: the flow's correlation id; `events` are taken as they are, not filtered.
    ///   - events: the flow's events from all stores, in any order.
    ///   - contextOrder: the preferred order of contexts for ties (usually the stores' order).
    ///   - failureEventTypes: event type names that record failed attempts, such as
    ///     `HandlerFailed`; their steps have ``Step/isFailure`` set.
    ///   - scannedEventCount: how many events were read to find `events`.
    ///   - entry: what the trace was asked for, shown in the renderings.
    public init(
        correlationID: UUID,
        events: [SourceEvent],
        contextOrder: [String] = [],
        failureEventTypes: Set<String> = FlowTracer.Configuration.defaultFailureEventTypes,
        scannedEventCount: Int = 0,
        entry: String? = nil
    ) {
        self.correlationID = correlationID
        self.scannedEventCount = scannedEventCount
        self.entry = entry
        self.steps = Self.causalSteps(events, contextOrder: contextOrder, failureEventTypes: failureEventTypes)
        var seen: Set<String> = []
        self.contexts = steps.compactMap { seen.insert($0.context).inserted ? $0.context : nil }
    }

    /// Whether the flow has no events.
    public var isEmpty: Bool { steps.isEmpty }

    /// When the first step (the flow's root) was created.
    public var startedAt: Date? { steps.first?.createdAt }

    /// When the latest event of the flow was created.
    public var endedAt: Date? { steps.map(\.createdAt).max() }

    /// The time from the first step to the latest event, in seconds; 0 for an empty trace.
    public var duration: TimeInterval {
        guard let startedAt, let endedAt else { return 0 }
        return endedAt.timeIntervalSince(startedAt)
    }

    /// The steps that record failed attempts (``Step/isFailure``).
    public var failures: [Step] { steps.filter(\.isFailure) }

    /// The step of the event `id`, if it is part of the flow.
    public func step(id: UUID) -> Step? {
        steps.first { $0.eventID == id }
    }
}

// MARK: Shortcuts

extension FlowTrace {
    /// Traces the flow an order started: the correlation id of the first event of the
    /// stream `order-<orderID>` in the `order` context (see ``FlowTracer/Configuration``
    /// to use another entry context or stream category).
    ///
    /// Reads every event of every store once; see ``FlowTracer`` for the cost.
    ///
    /// - Parameters:
    ///   - orderID: the order id, the part after `order-` in the stream id.
    ///   - stores: the context stores, in the order their lifelines should appear when events tie.
    ///   - configuration: the entry context and stream category, page size and failure types.
    /// - Throws: ``FlowTraceError`` `unknownEntity` when the order's stream does not exist,
    ///   `unknownContext` when no store is named like the entry context; store errors.
    public static func trace(
        orderID: String,
        in stores: [(context: String, storage: any EventStorage)],
        configuration: FlowTracer.Configuration = FlowTracer.Configuration()
    ) async throws -> FlowTrace {
        try await FlowTracer(stores: stores, configuration: configuration).trace(entityID: orderID)
    }

    /// Traces the flow of `correlationID` across `stores`.
    ///
    /// - Throws: ``FlowTraceError`` `unknownCorrelation` when no store holds an event of the
    ///   flow; store errors.
    public static func trace(
        correlationID: UUID,
        in stores: [(context: String, storage: any EventStorage)],
        configuration: FlowTracer.Configuration = FlowTracer.Configuration()
    ) async throws -> FlowTrace {
        try await FlowTracer(stores: stores, configuration: configuration).trace(correlationID: correlationID)
    }
}
