import Foundation

/// Short, one-line summaries of event payloads, read from their JSON without decoding
/// them into Swift types.
enum PayloadSummary {
    /// The longest summary, in characters.
    static let maximumLength = 100

    /// `key=value` pairs of the payload's top-level fields, sorted by key; strings quoted,
    /// nested values elided. A failure (`HandlerFailed`) reads
    /// `handler <name> failed on <type> (attempt n): <error>`.
    static func summarize(_ payload: Data, typeName: String, isFailure: Bool) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: payload, options: [.fragmentsAllowed]) else {
            return truncated(String(decoding: payload, as: UTF8.self))
        }
        guard let fields = object as? [String: Any] else {
            return truncated(describe(object))
        }
        if isFailure, let handler = fields["handler"] as? String {
            var text = "handler \(handler) failed"
            if let type = fields["eventType"] as? String { text += " on \(type)" }
            if let attempt = fields["attempt"] as? NSNumber { text += " (attempt \(attempt))" }
            if let error = fields["error"] as? String { text += ": \(error)" }
            return truncated(text)
        }
        let text = fields.keys.sorted().map { "\($0)=\(describe(fields[$0] as Any))" }.joined(separator: ", ")
        return truncated(text)
    }

    private static func describe(_ value: Any) -> String {
        switch value {
        case let string as String: "\"\(string)\""
        case let number as NSNumber: number.description
        case is NSNull: "null"
        case let array as [Any]: array.isEmpty ? "[]" : "[…\(array.count)]"
        case is [String: Any]: "{…}"
        default: "\(value)"
        }
    }

    private static func truncated(_ text: String) -> String {
        let oneLine = text.replacingOccurrences(of: "\n", with: " ")
        guard oneLine.count > maximumLength else { return oneLine }
        return String(oneLine.prefix(maximumLength - 1)) + "…"
    }
}
