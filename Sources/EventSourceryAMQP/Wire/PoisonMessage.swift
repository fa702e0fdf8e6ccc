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
            case undecodablePayload
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
        /// A property or header of the wire contract is missing or has the wrong type
        /// (`type`, `x-stream-id`, `x-stream-version`, the source context).
        public static let missingHeaders = Code(.missingHeaders)
        /// The JSON does not decode into the registered type (or its schema version is newer
        /// than this program knows, or an upcaster is missing).
        public static let undecodablePayload = Code(.undecodablePayload)

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
}
