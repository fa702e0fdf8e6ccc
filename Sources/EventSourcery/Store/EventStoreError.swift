public import Foundation

/// An error raised by an event store, a storage backend or the event registry.
///
/// Match on ``code``; the context fields say which stream, versions or type were involved
/// and ``description`` says what to do about it.
public struct EventStoreError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. New codes may be added; always keep a `default` case.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case concurrencyConflict
            case streamNotFound
            case invalidStreamID
            case unknownEventType
            case undecodablePayload
            case unencodableEvent
            case missingUpcaster
            case duplicateEventID
            case storageUnavailable
            case storageFailure
            case invalidArgument
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The stream's actual version differs from the expected version.
        public static let concurrencyConflict = Code(.concurrencyConflict)
        /// The stream does not exist.
        public static let streamNotFound = Code(.streamNotFound)
        /// The stream id is empty or too long.
        public static let invalidStreamID = Code(.invalidStreamID)
        /// No Swift type is registered under a stored type name.
        public static let unknownEventType = Code(.unknownEventType)
        /// A stored payload does not decode into its registered type.
        public static let undecodablePayload = Code(.undecodablePayload)
        /// An event failed to encode to JSON.
        public static let unencodableEvent = Code(.unencodableEvent)
        /// A stored event has an older schema version and no upcaster leads to the current one.
        public static let missingUpcaster = Code(.missingUpcaster)
        /// An event with the same id is already stored.
        public static let duplicateEventID = Code(.duplicateEventID)
        /// The database is closed, locked or cannot be opened.
        public static let storageUnavailable = Code(.storageUnavailable)
        /// The database reported an unexpected error.
        public static let storageFailure = Code(.storageFailure)
        /// An argument is out of range.
        public static let invalidArgument = Code(.invalidArgument)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// A message that says what happened and what to do.
    public var message: String
    /// The stream involved, if any.
    public var streamID: StreamID?
    /// For a concurrency conflict: the version the writer expected.
    public var expectedVersion: ExpectedVersion?
    /// For a concurrency conflict: the stream's actual version (0 when it does not exist).
    public var actualVersion: Int64?
    /// For registry errors: the stored type name.
    public var typeName: String?
    /// For a configuration's ``Code/invalidArgument``: the field that is wrong, e.g. `busyTimeout`.
    public var field: String?
    /// The underlying error, if any.
    public var underlying: (any Error)?

    public init(
        _ code: Code,
        message: String,
        streamID: StreamID? = nil,
        expectedVersion: ExpectedVersion? = nil,
        actualVersion: Int64? = nil,
        typeName: String? = nil,
        field: String? = nil,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.streamID = streamID
        self.expectedVersion = expectedVersion
        self.actualVersion = actualVersion
        self.typeName = typeName
        self.field = field
        self.underlying = underlying
    }

    /// An ``Code/invalidArgument`` error for a configuration field, as thrown by `validate()`.
    ///
    /// - Parameters:
    ///   - field: The field's name, e.g. `maximumConnections`.
    ///   - problem: What is wrong, e.g. `must be positive, got 0`.
    public static func invalidField(_ field: String, _ problem: String) -> EventStoreError {
        EventStoreError(.invalidArgument, message: "\(field) \(problem)", field: field)
    }

    public var description: String {
        var text = "EventStoreError.\(code): \(message)"
        if let underlying { text += " (underlying: \(underlying))" }
        return text
    }

    /// An event whose id is already stored.
    public static func duplicateEvent(_ id: UUID, stream: StreamID) -> EventStoreError {
        EventStoreError(
            .duplicateEventID,
            message: "An event with id \(id) is already stored (appending to '\(stream)'). "
                + "Event ids are unique across the store: create a new EventEnvelope for a new event.",
            streamID: stream
        )
    }

    /// A concurrency conflict on `stream`.
    public static func conflict(stream: StreamID, expected: ExpectedVersion, actual: Int64) -> EventStoreError {
        EventStoreError(
            .concurrencyConflict,
            message: "Stream '\(stream)' was expected at \(expected) but is at version \(actual). "
                + "Another writer appended first: reload the stream and retry the command.",
            streamID: stream,
            expectedVersion: expected,
            actualVersion: actual
        )
    }
}
