import Foundation

/// A configuration file or environment variable that cannot be used.
///
/// The description names the file, the entry and what is wrong, e.g.
/// `config/eventsourcery.yaml: relay.batch_size: must be positive, got 0`.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The file (or `environment`) the bad value came from.
    public var file: String
    /// The dotted path of the bad entry, if known.
    public var entry: String?
    /// What is wrong.
    public var message: String

    public init(file: String, entry: String?, message: String) {
        self.file = file
        self.entry = entry
        self.message = message
    }

    init(decoding error: DecodingError, file: String) {
        func path(_ codingPath: [any CodingKey]) -> String? {
            let keys = codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? nil : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            self.init(file: file, entry: path(context.codingPath + [key]), message: "is missing")
        case .typeMismatch(let type, let context):
            self.init(file: file, entry: path(context.codingPath), message: "should be \(type): \(context.debugDescription)")
        case .valueNotFound(let type, let context):
            self.init(file: file, entry: path(context.codingPath), message: "needs a \(type) value")
        case .dataCorrupted(let context):
            self.init(file: file, entry: path(context.codingPath), message: context.debugDescription)
        @unknown default:
            self.init(file: file, entry: nil, message: "\(error)")
        }
    }

    public var description: String {
        "\(file): \(entry.map { "\($0): " } ?? "")\(message)"
    }
}
