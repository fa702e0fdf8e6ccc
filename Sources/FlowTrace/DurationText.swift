import Foundation

/// Human-readable durations and timestamps for the renderings.
enum DurationText {
    /// `0.42 ms`, `12.3 ms`, `4.21 s`, `3 min 2 s`, `2 h 5 min`; negative values get a `-`.
    static func format(_ seconds: TimeInterval) -> String {
        let sign = seconds < 0 ? "-" : ""
        let magnitude = abs(seconds)
        let milliseconds = magnitude * 1000
        let text: String
        if milliseconds < 10 {
            text = String(format: "%.2f ms", milliseconds)
        } else if milliseconds < 1000 {
            text = String(format: "%.1f ms", milliseconds)
        } else if magnitude < 60 {
            text = String(format: "%.2f s", magnitude)
        } else if magnitude < 3600 {
            text = "\(Int(magnitude) / 60) min \(Int(magnitude) % 60) s"
        } else {
            text = "\(Int(magnitude) / 3600) h \(Int(magnitude) % 3600 / 60) min"
        }
        return sign + text
    }

    /// `+12.3 ms`, `-4.00 ms`: a signed offset.
    static func signed(_ seconds: TimeInterval) -> String {
        seconds < 0 ? format(seconds) : "+" + format(seconds)
    }

    /// An ISO 8601 timestamp in UTC with milliseconds, `2026-11-23T09:41:54.123Z`.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// Parses ``timestamp(_:)``'s format (fractional seconds optional).
    static func parseTimestamp(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }
}
