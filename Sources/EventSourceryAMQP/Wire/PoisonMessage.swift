public import EventSourceryRabbitMQ

/// A delivery that can never be processed, whatever the handler code does: it is
/// dead-lettered with the reason instead of being retried.
///
/// The consumer publishes such a message to `<context>.dlx` with the headers
/// `x-death-reason` (``Code/reason``) and `x-death-detail` (``detail``), then acknowledges
/// the original. Nothing is silently dropped and the consumer goes on.
public struct PoisonMessage: Error, Sendable, CustomStringConvertible {
    /// Why a message is poison. New codes may be added; always keep a `default` case.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case missingMessageID
            case invalidMessageID
            case wrongContentType
            case oversizedBody
            case malformedJSON
            case unknownEventType
            case missingHeaders
            case invalidHeaders
            case misrouted
            case undecodablePayload
            case unhandled
            case unknownCommandType
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The message has no `message_id`, so it cannot be deduplicated.
        public static let missingMessageID = Code(.missingMessageID)
        /// The `message_id` is not a UUID.
        public static let invalidMessageID = Code(.invalidMessageID)
        /// The `content_type` is missing or not `application/json`.
        public static let wrongContentType = Code(.wrongContentType)
        /// The body is larger than the consumer's limit.
        public static let oversizedBody = Code(.oversizedBody)
        /// The body is not JSON.
        public static let malformedJSON = Code(.malformedJSON)
        /// The consumer's registry has no event type of that name.
        public static let unknownEventType = Code(.unknownEventType)
        /// A property or header of the wire contract is missing (`type`, `x-stream-id`,
        /// `x-stream-version`).
        public static let missingHeaders = Code(.missingHeaders)
        /// A header of the wire contract has the wrong type or value: `x-stream-version` or
        /// `x-schema-version` not a positive integer, `x-stream-id` not a stream id,
        /// `x-causation-id` not a UUID.
        public static let invalidHeaders = Code(.invalidHeaders)
        /// The message did not come the contract's way: its exchange is not `<source>.events`,
        /// or its routing key is not `<source>.<type>`.
        public static let misrouted = Code(.misrouted)
        /// The JSON does not decode into the registered type (or its schema version is newer
        /// than this program knows, or an upcaster is missing).
        public static let undecodablePayload = Code(.undecodablePayload)
        /// The message reached the inbox, but no handler of the consumer takes its type from
        /// its source (for example a binding left over from a removed handler).
        public static let unhandled = Code(.unhandled)

        /// The receiving context's command registry has no command type of that name.
        public static let unknownCommandType = Code(.unknownCommandType)

        /// The text written to the `x-death-reason` header, e.g. `malformedJSON`.
        public var reason: String { base.rawValue }

        public var description: String { base.rawValue }
    }

    /// The reason code.
    public var code: Code
    /// What exactly is wrong, for the `x-death-detail` header and the log.
    public var detail: String

    /// Creates a poison-message error.
    public init(_ code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code.reason): \(detail)" }

    /// The dead letter of `delivery`: its body and properties, with the headers
    /// `x-death-reason` and `x-death-detail` added, to publish to the dead-letter `exchange`.
    public func deadLetter(_ delivery: Delivery, exchange: String) -> OutgoingMessage {
        var properties = delivery.properties
        var headers = properties.headers ?? [:]
        headers[EventMessage.deathReasonHeader] = .string(code.reason)
        headers[EventMessage.deathDetailHeader] = .string(detail)
        properties.headers = headers
        return OutgoingMessage(
            exchange: exchange, routingKey: delivery.routingKey, body: delivery.body, properties: properties, mandatory: true)
    }
}
