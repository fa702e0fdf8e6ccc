import Foundation

extension FlowTrace {
    /// Options of ``renderText(options:)``.
    public struct TextOptions: Sendable, Hashable {
        /// Whether to add a column with a short payload summary. Default `true`.
        public var showsSummary: Bool = true
        /// Whether to indent event names by causal depth. Default `true`.
        public var indentsByDepth: Bool = true

        /// Creates options; every value has the documented default.
        public init(showsSummary: Bool = true, indentsByDepth: Bool = true) {
            self.showsSummary = showsSummary
            self.indentsByDepth = indentsByDepth
        }
    }

    /// The timeline as a plain-text table for a terminal.
    ///
    /// A header names the flow, the number of events and contexts, and the duration; then one
    /// row per step in causal order with aligned columns: the time since the first step, the
    /// delay from the cause (`via broker` when the cause is in another context, `clock skew!`
    /// when the event claims to be older than its cause), the context, the event type
    /// (indented by causal depth; failures are marked `✗`), `stream@version`, the first 8 hex
    /// digits of the event id and a payload summary.
    public func renderText(options: TextOptions = TextOptions()) -> String {
        var lines: [String] = []
        lines.append("Flow \(correlationID.uuidString.lowercased())" + (entry.map { "  (\($0))" } ?? ""))
        let contextList = contexts.joined(separator: " → ")
        lines.append(
            "\(steps.count) event\(steps.count == 1 ? "" : "s") in \(contexts.count) context\(contexts.count == 1 ? "" : "s") (\(contextList)), "
                + "\(DurationText.format(duration)) from first to last"
                + (failures.isEmpty ? "" : ", \(failures.count) failed attempt\(failures.count == 1 ? "" : "s")")
        )
        if let startedAt {
            lines.append("started \(DurationText.timestamp(startedAt)); \(scannedEventCount) events read to find it")
        }
        lines.append("")

        var header = ["+from start", "Δ from cause", "context", "event", "stream@version", "id"]
        if options.showsSummary { header.append("details") }
        var rows: [[String]] = [header]
        for step in steps {
            let cause: String
            if let sinceCause = step.sinceCause {
                var text = DurationText.signed(sinceCause)
                if step.isCrossContext { text += " via broker" }
                if step.hasClockSkew { text += " clock skew!" }
                cause = text
            } else {
                cause = "root"
            }
            var event = step.label
            if options.indentsByDepth && step.depth > 0 {
                event = String(repeating: "  ", count: min(step.depth - 1, 8)) + "└ " + event
            }
            var row = [DurationText.signed(step.sinceStart), cause, step.context, event, step.streamLabel, step.shortID]
            if options.showsSummary { row.append(step.summary) }
            rows.append(row)
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        for (number, row) in rows.enumerated() {
            var cells: [String] = []
            for (column, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                if column == row.count - 1 {
                    cells.append(cell)
                } else if column == 0 {
                    cells.append(padding + cell)  // right-aligned numbers
                } else {
                    cells.append(cell + padding)
                }
            }
            lines.append(cells.joined(separator: "  "))
            if number == 0 {
                lines.append(widths.map { String(repeating: "─", count: $0) }.joined(separator: "  "))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
