/// The name of an event stream, such as `order-42`.
///
/// A stream id is 1 to ``maximumLength`` UTF-8 bytes long. Creating one from an empty
/// or too long string throws ``EventStoreError`` with code
/// ``EventStoreError/Code/invalidStreamID``.
public struct StreamID: Hashable, Sendable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The longest stream id accepted, in UTF-8 bytes.
    public static let maximumLength = 255

    /// The stream id's text.
    public let rawValue: String

    /// Validates and creates a stream id.
    ///
    /// - Throws: ``EventStoreError`` (`invalidStreamID`) when `rawValue` is empty or longer
    ///   than ``maximumLength`` UTF-8 bytes.
    public init(_ rawValue: String) throws(EventStoreError) {
        guard !rawValue.isEmpty else {
            throw EventStoreError(.invalidStreamID, message: "A stream id must not be empty.")
        }
        guard rawValue.utf8.count <= Self.maximumLength else {
            throw EventStoreError(
                .invalidStreamID,
                message: "The stream id '\(rawValue.prefix(40))…' is \(rawValue.utf8.count) bytes long; "
                    + "the limit is \(Self.maximumLength). Use a shorter id, such as a UUID."
            )
        }
        self.rawValue = rawValue
    }

    /// Creates a stream id from a literal; the literal must be a valid id.
    public init(stringLiteral value: String) {
        do {
            try self.init(value)
        } catch {
            preconditionFailure(error.description)
        }
    }

    /// Creates the id `<category>-<id>`, the convention ``Repository`` uses.
    public init(category: String, id: String) throws(EventStoreError) {
        try self.init("\(category)-\(id)")
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        try self.init(container.decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
