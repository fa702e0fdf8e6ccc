public import Foundation

/// An error raised while tracing a flow.
///
/// Match on ``code``; ``description`` says what was looked for and where.
public struct FlowTraceError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. New codes may be added; always keep a `default` case.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case unknownEntity
            case unknownCorrelation
            case unknownContext
            case invalidArgument
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The entry stream (for example `order-<id>`) does not exist in the entry context's store.
        public static let unknownEntity = Code(.unknownEntity)
        /// No store holds an event of the correlation id.
        public static let unknownCorrelation = Code(.unknownCorrelation)
        /// A context named in the request or configuration has no store.
        public static let unknownContext = Code(.unknownContext)
        /// An argument is out of range (an empty store list, a page size below 1, a bad stream id).
        public static let invalidArgument = Code(.invalidArgument)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// What happened, in a sentence.
    public var message: String
    /// The context involved, if any.
    public var context: String?
    /// The stream involved, if any.
    public var streamID: String?
    /// The correlation id involved, if any.
    public var correlationID: UUID?

    /// Creates an error.
    public init(_ code: Code, message: String, context: String? = nil, streamID: String? = nil, correlationID: UUID? = nil) {
        self.code = code
        self.message = message
        self.context = context
        self.streamID = streamID
        self.correlationID = correlationID
    }

    public var description: String { message }
}
