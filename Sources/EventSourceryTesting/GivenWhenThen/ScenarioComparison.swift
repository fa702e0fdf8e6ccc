import EventSourcery
import Foundation
import Testing

/// Compares what a scenario expected with what happened, line by line, and describes a
/// difference as two columns side by side.
enum ScenarioComparison {
    /// `TypeName {json}`: an event as the store would write it.
    static func describe(_ event: any Event) -> String {
        let encoded = try? EventRegistry.encode(EventEnvelope(event))
        return "\(type(of: event).typeName) \(encoded.map { String(decoding: $0.payload, as: UTF8.self) } ?? "<unencodable>")"
    }

    /// `→ target TypeName {json}`: a command as its sender's outbox would hold it.
    static func describe(_ sent: ProcessReaction.SentCommand) -> String {
        let encoded = try? CommandRegistry.encode(CommandEnvelope(sent.command), to: sent.target)
        return
            "→ \(sent.target) \(type(of: sent.command).typeName) \(encoded.map { String(decoding: $0.payload, as: UTF8.self) } ?? "<unencodable>")"
    }

    /// `name at <ISO 8601 time>`.
    static func describe(deadline name: String, dueAt: Date) -> String {
        "\(name) at \(dueAt.formatted(.iso8601))"
    }

    /// The two lists side by side with the differing rows marked, or `nil` when they are equal.
    static func sideBySide(_ title: String, expected: [String], actual: [String]) -> String? {
        guard expected != actual else { return nil }
        let width = max(8, expected.map(\.count).max() ?? 0)
        func pad(_ text: String) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
        var lines = ["\(title) differ:", "     \(pad("expected")) | actual"]
        for row in 0..<max(expected.count, actual.count) {
            let left = row < expected.count ? expected[row] : "—"
            let right = row < actual.count ? actual[row] : "—"
            let mark = left == right ? " " : "✗"
            lines.append("\(mark) \(String(format: "%2d", row + 1)) \(pad(left)) | \(right)")
        }
        return lines.joined(separator: "\n")
    }

    /// Records an issue with every difference found, and returns whether there was none.
    @discardableResult
    static func check(_ differences: [String?], sourceLocation: SourceLocation) -> Bool {
        let found = differences.compactMap { $0 }
        guard !found.isEmpty else { return true }
        Issue.record(Comment(rawValue: found.joined(separator: "\n\n")), sourceLocation: sourceLocation)
        return false
    }
}
