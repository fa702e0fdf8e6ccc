import Tracing

/// The W3C identity of a span in a ``BenchTracer``'s context: binary ids as a tracing SDK
/// keeps them, formatted as `traceparent` only when injected.
struct BenchSpanContext: Sendable {
    var traceIDHigh: UInt64
    var traceIDLow: UInt64
    var spanID: UInt64
    /// The `sampled` trace flag: whether the span records and is exported.
    var isSampled = true

    enum Key: ServiceContextKey {
        typealias Value = BenchSpanContext
    }

    /// `00-<trace id>-<span id>-<flags>` (`01` sampled, `00` not), written into one preallocated buffer.
    var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            let digits: StaticString = "0123456789abcdef"
            func put(_ value: UInt64, nibbles: Int, at offset: Int) {
                for index in 0..<nibbles {
                    let nibble = Int((value >> UInt64(4 * (nibbles - 1 - index))) & 0xF)
                    buffer[offset + index] = digits.utf8Start[nibble]
                }
            }
            buffer[0] = UInt8(ascii: "0")
            buffer[1] = UInt8(ascii: "0")
            buffer[2] = UInt8(ascii: "-")
            put(traceIDHigh, nibbles: 16, at: 3)
            put(traceIDLow, nibbles: 16, at: 19)
            buffer[35] = UInt8(ascii: "-")
            put(spanID, nibbles: 16, at: 36)
            buffer[52] = UInt8(ascii: "-")
            buffer[53] = UInt8(ascii: "0")
            buffer[54] = UInt8(ascii: isSampled ? "1" : "0")
            return 55
        }
    }

    /// Parses a version-00 `traceparent`; `nil` when it is malformed.
    init?(traceparent: String) {
        var text = traceparent
        guard
            let parsed = text.withUTF8({ bytes -> BenchSpanContext? in
                guard bytes.count == 55, bytes[0] == UInt8(ascii: "0"), bytes[1] == UInt8(ascii: "0"), bytes[2] == UInt8(ascii: "-"),
                    bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-")
                else { return nil }
                func hex(_ offset: Int) -> UInt64? {
                    var value: UInt64 = 0
                    for byte in bytes[offset..<offset + 16] {
                        let nibble: UInt8
                        switch byte {
                        case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
                        case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
                        default: return nil
                        }
                        value = value << 4 | UInt64(nibble)
                    }
                    return value
                }
                guard let high = hex(3), let low = hex(19), let span = hex(36), bytes[53] == UInt8(ascii: "0") else { return nil }
                let sampled: Bool
                switch bytes[54] {
                case UInt8(ascii: "1"): sampled = true
                case UInt8(ascii: "0"): sampled = false
                default: return nil
                }
                return BenchSpanContext(traceIDHigh: high, traceIDLow: low, spanID: span, isSampled: sampled)
            })
        else { return nil }
        self = parsed
    }

    init(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, isSampled: Bool) {
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.spanID = spanID
        self.isSampled = isSampled
    }
}
