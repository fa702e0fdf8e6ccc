import Foundation

extension FlowTrace {
    /// The timeline as a standalone SVG sequence diagram.
    ///
    /// One lifeline per context (in ``contexts`` order), one box per step on its context's
    /// lifeline at the step's row (rows follow causal order, top to bottom), the time since
    /// the first step in the left margin, and an arrow from each cause to its effects. Arrows
    /// between contexts went through the broker and are labelled with the hop delay; arrows
    /// whose event claims to be older than its cause (clock skew) are dashed red, and failed
    /// attempts are red boxes. Hovering a box shows the event's ids, time and payload summary
    /// (SVG `<title>`). All text is XML-escaped; the document uses no external resources.
    public func renderSVG() -> String {
        SequenceDiagram(trace: self).svg()
    }

    /// The timeline as a self-contained HTML page: a header with the correlation id, the
    /// event count and the duration, the SVG sequence diagram of ``renderSVG()`` inline, and
    /// a table of the steps.
    ///
    /// The page has no scripts and loads nothing: its styles are inline, all text is
    /// HTML-escaped. Write it to a file and open it in a browser.
    public func renderHTML() -> String {
        let esc = Markup.escape
        let id = correlationID.uuidString.lowercased()
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Flow trace \(esc(id))</title>
            <style>
            body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
            h1 { font-size: 20px; margin: 0 0 8px; }
            dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; margin: 0 0 16px; font-size: 14px; }
            dt { color: #666; } dd { margin: 0; }
            code, td.mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
            figure { margin: 0 0 24px; overflow-x: auto; }
            table { border-collapse: collapse; font-size: 13px; }
            th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e5e5e5; vertical-align: top; }
            th { background: #f6f6f6; }
            td.num { text-align: right; white-space: nowrap; }
            tr.failure td { background: #fdecea; }
            .skew { color: #c62828; font-weight: 600; }
            footer { margin-top: 24px; font-size: 12px; color: #888; }
            </style>
            </head>
            <body>
            <header>
            <h1>Flow trace</h1>
            <dl>
            <dt>correlation id</dt><dd><code>\(esc(id))</code></dd>

            """
        if let entry {
            html += "<dt>entry</dt><dd><code>\(esc(entry))</code></dd>\n"
        }
        html +=
            "<dt>events</dt><dd>\(steps.count)"
            + (failures.isEmpty ? "" : " (\(failures.count) failed attempt\(failures.count == 1 ? "" : "s"))") + "</dd>\n"
        html += "<dt>contexts</dt><dd>\(esc(contexts.joined(separator: " → ")))</dd>\n"
        html += "<dt>duration</dt><dd>\(esc(DurationText.format(duration))) from first to last event</dd>\n"
        if let startedAt {
            html += "<dt>started</dt><dd>\(esc(DurationText.timestamp(startedAt)))</dd>\n"
        }
        html += "<dt>read</dt><dd>\(scannedEventCount) events scanned to find the flow</dd>\n"
        html += "</dl>\n</header>\n<main>\n<figure>\n"
        html += renderSVG()
        html += "</figure>\n<table>\n<thead><tr><th>#</th><th>+from start</th><th>Δ from cause</th><th>context</th><th>event</th>"
        html += "<th>stream@version</th><th>event id</th><th>caused by</th><th>created at</th><th>details</th></tr></thead>\n<tbody>\n"
        for step in steps {
            var cause = "root"
            if let sinceCause = step.sinceCause {
                cause = esc(DurationText.signed(sinceCause)) + (step.isCrossContext ? " via broker" : "")
                if step.hasClockSkew { cause += " <span class=\"skew\">clock skew</span>" }
            }
            let causedBy =
                step.causeIndex.map { "#\($0 + 1)" } ?? step.causationID.map { "<code>\(esc($0.uuidString.lowercased()))</code> (outside)" }
                ?? "–"
            html += "<tr id=\"row-\(step.index + 1)\"\(step.isFailure ? " class=\"failure\"" : "")>"
            html += "<td class=\"num\">\(step.index + 1)</td>"
            html += "<td class=\"num\">\(esc(DurationText.signed(step.sinceStart)))</td>"
            html += "<td class=\"num\">\(cause)</td>"
            html += "<td>\(esc(step.context))</td>"
            html += "<td>\(esc(step.label))</td>"
            html += "<td class=\"mono\">\(esc(step.streamLabel))</td>"
            html += "<td class=\"mono\">\(esc(step.eventID.uuidString.lowercased()))</td>"
            html += "<td>\(causedBy)</td>"
            html += "<td class=\"mono\">\(esc(DurationText.timestamp(step.createdAt)))</td>"
            html += "<td class=\"mono\">\(esc(step.summary))</td>"
            html += "</tr>\n"
        }
        html += "</tbody>\n</table>\n</main>\n"
        html += "<footer>Written by flow-trace (EventSourcery). Delays come from the writers' clocks.</footer>\n"
        html += "</body>\n</html>\n"
        return html
    }
}

/// XML and HTML text helpers.
enum Markup {
    /// Escapes `&`, `<`, `>`, `"` and `'`, and replaces characters XML 1.0 forbids with U+FFFD,
    /// so the text is safe in element content and in quoted attributes of HTML and SVG.
    static func escape(_ text: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            case "\t", "\n", "\r": escaped.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF {
                    escaped += "\u{FFFD}"
                } else {
                    escaped.unicodeScalars.append(scalar)
                }
            }
        }
        return escaped
    }

    /// `text` cut to `length` characters with an ellipsis.
    static func clipped(_ text: String, to length: Int) -> String {
        text.count <= length ? text : String(text.prefix(length - 1)) + "…"
    }
}
