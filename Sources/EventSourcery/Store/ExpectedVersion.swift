/// What a writer believes about a stream's version when it appends.
///
/// The store compares it with the stream's actual version inside the write transaction
/// and rejects the append with ``EventStoreError/Code/concurrencyConflict`` when they
/// differ.
public enum ExpectedVersion: Hashable, Sendable, CustomStringConvertible {
    /// Append whatever the stream's version.
    case any
    /// The stream must not exist yet.
    case noStream
    /// The stream must have exactly this version (the version of its last event).
    case exact(Int64)

    /// Whether a stream whose version is `actual` (0 when it does not exist) satisfies this expectation.
    public func isSatisfied(byActualVersion actual: Int64) -> Bool {
        switch self {
        case .any: true
        case .noStream: actual == 0
        case .exact(let expected): actual == expected
        }
    }

    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no stream"
        case .exact(let version): "version \(version)"
        }
    }
}
