/// The stored form of a trace context (``EventMetadata/traceContext``): a JSON object of its
/// fields with sorted keys, written directly rather than through `JSONEncoder`, which costs
/// several microseconds per event that a traced consumer appends. Any JSON decoder reads it.
package enum TraceContextJSON {
    /// `fields` as a JSON object with sorted keys; strings escaped as RFC 8259 requires.
    package static func encode(_ fields: [String: String]) -> String {
        var text = "{"
        for (index, key) in fields.keys.sorted().enumerated() {
            if index > 0 { text += "," }
            append(key, to: &text)
            text += ":"
            append(fields[key] ?? "", to: &text)
        }
        text += "}"
        return text
    }

    /// Appends `value` as a JSON string: quotes, backslashes and control characters escaped.
    private static func append(_ value: String, to text: inout String) {
        text += "\""
        guard value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            text += value  // the usual case: a traceparent or tracestate has nothing to escape
            text += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
