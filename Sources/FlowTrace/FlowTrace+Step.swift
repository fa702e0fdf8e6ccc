public import Foundation

extension FlowTrace {
    /// One event of a flow, at its place in causal order.
    ///
    /// Delays are in seconds and computed from the events' `createdAt`, which each writer's
    /// clock set: across machines they include clock skew, and may be negative (see
    /// ``hasClockSkew``). The order of steps never depends on them alone.
    public struct Step: Sendable, Hashable, Codable, Identifiable {
        /// The step's place in ``FlowTrace/steps``, from 0.
        public var index: Int
        /// The context whose store holds the event.
        public var context: String
        /// The event's type name.
        public var eventType: String
        /// The stream the event belongs to.
        public var streamID: String
        /// The event's version in its stream.
        public var streamVersion: Int64
        /// The event's position in its store's global order.
        public var position: Int64
        /// The event's id.
        public var eventID: UUID
        /// The id of the event that caused it, as recorded (may be outside the trace).
        public var causationID: UUID?
        /// The index of the cause's step, or `nil` when the step is a root.
        public var causeIndex: Int?
        /// The context of the cause's step, or `nil` when the step is a root.
        public var causeContext: String?
        /// How many causation links lead from a root to this step; 0 for roots.
        public var depth: Int
        /// When the event was created, by its writer's clock.
        public var createdAt: Date
        /// Seconds since the first step was created.
        public var sinceStart: TimeInterval
        /// Seconds since the previous step was created (0 for the first step).
        public var sincePrevious: TimeInterval
        /// Seconds from the cause's creation to this event's creation: the handling latency,
        /// including the broker hop when the cause is in another context. `nil` for roots.
        public var sinceCause: TimeInterval?
        /// Whether the event records a failed attempt (such as `HandlerFailed`).
        public var isFailure: Bool
        /// Whether the step is a command sent to ``context`` (its cause is the sender's event).
        public var isCommand: Bool
        /// A short summary of the payload's top-level fields.
        public var summary: String
        /// The payload's JSON text.
        public var payload: String

        /// The event id.
        public var id: UUID { eventID }

        /// Whether the step is a root: its cause is not part of the trace.
        public var isRoot: Bool { causeIndex == nil }

        /// Whether the cause is in another context, so the event crossed the broker.
        public var isCrossContext: Bool { causeContext.map { $0 != context } ?? false }

        /// Whether the event claims to be older than its cause: the writers' clocks disagree.
        public var hasClockSkew: Bool { (sinceCause ?? 0) < 0 }

        /// `stream@version`, for example `order-42@1`; for a command the queue, `payment.commands`.
        public var streamLabel: String { isCommand ? streamID : "\(streamID)@\(streamVersion)" }

        /// The type name, with `⇒ ` before a command's.
        public var label: String { (isFailure ? "✗ " : "") + (isCommand ? "⇒ " : "") + eventType }

        /// The first 8 hex digits of the event id, lowercased.
        public var shortID: String { String(eventID.uuidString.lowercased().prefix(8)) }

        /// Creates a step.
        public init(
            index: Int, context: String, eventType: String, streamID: String, streamVersion: Int64, position: Int64,
            eventID: UUID, causationID: UUID?, causeIndex: Int?, causeContext: String?, depth: Int, createdAt: Date,
            sinceStart: TimeInterval, sincePrevious: TimeInterval, sinceCause: TimeInterval?, isFailure: Bool,
            summary: String, payload: String, isCommand: Bool = false
        ) {
            self.isCommand = isCommand
            self.index = index
            self.context = context
            self.eventType = eventType
            self.streamID = streamID
            self.streamVersion = streamVersion
            self.position = position
            self.eventID = eventID
            self.causationID = causationID
            self.causeIndex = causeIndex
            self.causeContext = causeContext
            self.depth = depth
            self.createdAt = createdAt
            self.sinceStart = sinceStart
            self.sincePrevious = sincePrevious
            self.sinceCause = sinceCause
            self.isFailure = isFailure
            self.summary = summary
            self.payload = payload
        }

        private enum CodingKeys: String, CodingKey {
            case index, context, eventType, streamID, streamVersion, position, eventID, causationID, causeIndex
            case causeContext, depth, createdAt
            case sinceStart = "sinceStartSeconds"
            case sincePrevious = "sincePreviousSeconds"
            case sinceCause = "sinceCauseSeconds"
            case isFailure, isCommand, summary, payload
        }
    }
}
