import Foundation

/// The SVG layout of a ``FlowTrace``: lifelines as columns, steps as rows.
struct SequenceDiagram {
    let trace: FlowTrace

    // Geometry, in SVG user units (pixels).
    static let gutter = 110  // left margin with the times
    static let columnWidth = 280
    static let boxWidth = 190
    static let boxHeight = 40
    static let headTop = 62  // top of the lifeline heads
    static let headHeight = 30
    static let firstRowY = 136  // centre of the first row
    static let rowHeight = 62
    static let minimumWidth = 640

    static let fills = ["#e3f2fd", "#e8f5e9", "#fff3e0", "#f3e5f5", "#e0f7fa", "#fce4ec"]
    static let strokes = ["#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457"]

    var width: Int { max(Self.minimumWidth, Self.gutter + Self.columnWidth * max(trace.contexts.count, 1) + 20) }
    var height: Int { Self.firstRowY + Self.rowHeight * max(trace.steps.count - 1, 0) + Self.boxHeight / 2 + 36 }

    func column(of context: String) -> Int { trace.contexts.firstIndex(of: context) ?? 0 }
    func x(ofColumn column: Int) -> Int { Self.gutter + Self.columnWidth * column + Self.columnWidth / 2 }
    func y(ofRow row: Int) -> Int { Self.firstRowY + Self.rowHeight * row }

    func svg() -> String {
        let esc = Markup.escape
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" \
            font-family="Helvetica, Arial, sans-serif" font-size="12" role="img" aria-label="\(esc(ariaLabel))">

            """
        out += "<title>\(esc(ariaLabel))</title>\n"
        out += """
            <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">\
            <path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker>
            <marker id="arrow-skew" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">\
            <path d="M 0 0 L 10 5 L 0 10 z" fill="#c62828"/></marker>
            </defs>
            <rect x="0" y="0" width="\(width)" height="\(height)" fill="#ffffff"/>

            """
        // Header.
        out +=
            "<text x=\"16\" y=\"24\" font-size=\"15\" font-weight=\"bold\">Flow \(esc(trace.correlationID.uuidString.lowercased()))</text>\n"
        out += "<text x=\"16\" y=\"44\" fill=\"#555\">\(esc(subtitle))</text>\n"

        // Row guides and times.
        for step in trace.steps {
            let y = y(ofRow: step.index)
            out += "<line x1=\"\(Self.gutter)\" y1=\"\(y)\" x2=\"\(width - 10)\" y2=\"\(y)\" stroke=\"#f0f0f0\"/>\n"
            out +=
                "<text x=\"\(Self.gutter - 12)\" y=\"\(y + 4)\" text-anchor=\"end\" fill=\"#666\">\(esc(DurationText.signed(step.sinceStart)))</text>\n"
        }

        // Lifelines.
        let bottom = height - 16
        for (column, context) in trace.contexts.enumerated() {
            let x = x(ofColumn: column)
            let stroke = Self.strokes[column % Self.strokes.count]
            out += "<g class=\"lifeline\" data-context=\"\(esc(context))\">"
            out +=
                "<line x1=\"\(x)\" y1=\"\(Self.headTop + Self.headHeight)\" x2=\"\(x)\" y2=\"\(bottom)\" stroke=\"\(stroke)\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>"
            out += "<rect x=\"\(x - 80)\" y=\"\(Self.headTop)\" width=\"160\" height=\"\(Self.headHeight)\" rx=\"6\" fill=\"\(stroke)\"/>"
            out +=
                "<text x=\"\(x)\" y=\"\(Self.headTop + 20)\" text-anchor=\"middle\" fill=\"#ffffff\" font-size=\"14\" font-weight=\"bold\">\(esc(Markup.clipped(context, to: 20)))</text>"
            out += "</g>\n"
        }

        // Arrows under the boxes.
        for step in trace.steps {
            guard let causeIndex = step.causeIndex else { continue }
            out += arrow(from: trace.steps[causeIndex], to: step)
        }

        // Boxes.
        for step in trace.steps {
            out += box(step)
        }
        out += "</svg>\n"
        return out
    }

    private var ariaLabel: String {
        "Sequence diagram of flow \(trace.correlationID.uuidString.lowercased())"
    }

    private var subtitle: String {
        var text =
            "\(trace.steps.count) event\(trace.steps.count == 1 ? "" : "s") · \(trace.contexts.count) context\(trace.contexts.count == 1 ? "" : "s")"
        text += " · \(DurationText.format(trace.duration)) from first to last"
        if let entry = trace.entry { text += " · \(entry)" }
        if !trace.failures.isEmpty { text += " · \(trace.failures.count) failed attempt\(trace.failures.count == 1 ? "" : "s")" }
        return text
    }

    private func box(_ step: FlowTrace.Step) -> String {
        let esc = Markup.escape
        let column = column(of: step.context)
        let x = x(ofColumn: column), y = y(ofRow: step.index)
        let fill = step.isFailure ? "#fdecea" : Self.fills[column % Self.fills.count]
        let stroke = step.isFailure ? "#c62828" : Self.strokes[column % Self.strokes.count]
        var tooltip = "#\(step.index + 1) \(step.eventType) in \(step.context)\n\(step.streamLabel) (position \(step.position))"
        tooltip += "\nid \(step.eventID.uuidString.lowercased())"
        if let causation = step.causationID { tooltip += "\ncaused by \(causation.uuidString.lowercased())" }
        tooltip += "\ncreated \(DurationText.timestamp(step.createdAt)), \(DurationText.signed(step.sinceStart)) from start"
        if let sinceCause = step.sinceCause { tooltip += ", \(DurationText.signed(sinceCause)) from cause" }
        if !step.summary.isEmpty { tooltip += "\n\(step.summary)" }
        var out =
            "<g class=\"step\" id=\"step-\(step.index + 1)\" data-context=\"\(esc(step.context))\" data-event=\"\(esc(step.eventType))\">"
        out += "<title>\(esc(tooltip))</title>"
        out +=
            "<rect x=\"\(x - Self.boxWidth / 2)\" y=\"\(y - Self.boxHeight / 2)\" width=\"\(Self.boxWidth)\" height=\"\(Self.boxHeight)\" rx=\"8\" "
        out += "fill=\"\(fill)\" stroke=\"\(stroke)\" stroke-width=\"1.5\"\(step.isFailure ? " stroke-dasharray=\"4 3\"" : "")/>"
        let name = step.label
        out +=
            "<text x=\"\(x)\" y=\"\(y - 3)\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\" fill=\"#222\">\(esc(Markup.clipped(name, to: 26)))</text>"
        out +=
            "<text x=\"\(x)\" y=\"\(y + 13)\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555\">\(esc(Markup.clipped(step.streamLabel, to: 32)))</text>"
        out += "</g>\n"
        return out
    }

    private func arrow(from cause: FlowTrace.Step, to effect: FlowTrace.Step) -> String {
        let esc = Markup.escape
        let causeColumn = column(of: cause.context), effectColumn = column(of: effect.context)
        let xc = x(ofColumn: causeColumn), yc = y(ofRow: cause.index)
        let xe = x(ofColumn: effectColumn), ye = y(ofRow: effect.index)
        let skew = effect.hasClockSkew
        // A command is drawn bolder and blue: the sender tells the target what to do.
        let color = skew ? "#c62828" : effect.isCommand ? "#1565c0" : "#555"
        let style =
            "fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(effect.isCommand ? "2.5" : "1.5")\"\(skew ? " stroke-dasharray=\"5 3\"" : "") marker-end=\"url(#\(skew ? "arrow-skew" : "arrow"))\""
        var label = effect.sinceCause.map(DurationText.signed) ?? ""
        if skew { label += " clock skew" }
        let halo = "stroke=\"#ffffff\" stroke-width=\"4\" paint-order=\"stroke\""
        var out =
            "<g class=\"\(effect.isCommand ? "arrow command" : "arrow")\" data-from=\"step-\(cause.index + 1)\" data-to=\"step-\(effect.index + 1)\">"
        if causeColumn != effectColumn {
            // Across contexts, through the broker: from the cause's side to the effect's side.
            let direction = xe > xc ? 1 : -1
            let x1 = xc + direction * Self.boxWidth / 2, x2 = xe - direction * Self.boxWidth / 2
            out += "<line x1=\"\(x1)\" y1=\"\(yc)\" x2=\"\(x2)\" y2=\"\(ye)\" \(style)/>"
            // The label sits on the line, a third of the way from the effect, clear of the boxes.
            let lx = Double(x2) + Double(x1 - x2) / 3, ly = Double(ye) + Double(yc - ye) / 3
            out +=
                "<text x=\"\(Self.coordinate(lx))\" y=\"\(Self.coordinate(ly - 4))\" text-anchor=\"middle\" font-size=\"11\" fill=\"\(color)\" \(halo)>\(esc(label))</text>"
        } else {
            // Within one context (no broker hop): a curve on the left of the lifeline's boxes.
            let x1 = xc - Self.boxWidth / 2, x2 = xe - Self.boxWidth / 2
            let bend = 36
            out += "<path d=\"M \(x1) \(yc) C \(x1 - bend) \(yc), \(x2 - bend) \(ye), \(x2) \(ye)\" \(style)/>"
            // No label: the curve may pass the time margin; the delay is in the effect's tooltip.
            out += "<title>\(esc(label))</title>"
        }
        out += "</g>\n"
        return out
    }

    private static func coordinate(_ value: Double) -> String {
        String(format: "%.1f", value)
    }
}
