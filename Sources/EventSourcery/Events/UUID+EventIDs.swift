public import Foundation

extension UUID {
    /// A time-ordered UUID (version 7, RFC 9562): the Unix time in milliseconds in the first
    /// 48 bits, the fraction of the millisecond in the next 12 (the RFC's "increased clock
    /// precision"), then 62 random bits.
    ///
    /// New events get such ids. Ids created later sort after earlier ones, so the store's
    /// unique indexes on event ids and inbox entries grow at their end instead of touching a
    /// random page for every insert: a transaction of many events writes a few pages rather
    /// than one per event.
    ///
    /// - Parameter date: The time to encode; times before 1970 encode as 0.
    public static func timeOrdered(at date: Date = Date()) -> UUID {
        let microseconds = max(0, date.timeIntervalSince1970 * 1_000_000).rounded(.down)
        let milliseconds = UInt64(microseconds / 1000)
        // The microseconds within the millisecond, scaled to 12 bits.
        let fraction = UInt64(microseconds.truncatingRemainder(dividingBy: 1000)) * 4096 / 1000
        // 48 bits of time, version 7, 12 bits of fraction; then variant 0b10 and 62 random bits.
        let high = milliseconds << 16 | 0x7000 | (fraction & 0x0FFF)
        let low = 0x8000_0000_0000_0000 | (RandomBits.next() & 0x3FFF_FFFF_FFFF_FFFF)
        return UUID(high, low)
    }

    /// Reads a UUID in its canonical text form (`8-4-4-4-12` hex digits, either case), as
    /// `UUID(uuidString:)` does but without its `sscanf` per call: every consumed message
    /// carries up to three ids.
    package static func parse(_ text: String) -> UUID? {
        var text = text
        text.makeContiguousUTF8()
        return text.utf8.withContiguousStorageIfAvailable(parse) ?? nil
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> UUID? {
        guard bytes.count == 36 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var digits = 0
        for (index, byte) in bytes.enumerated() {
            if index == 8 || index == 13 || index == 18 || index == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            if digits < 16 {
                high = high << 4 | UInt64(nibble)
            } else {
                low = low << 4 | UInt64(nibble)
            }
            digits += 1
        }
        return UUID(high, low)
    }

    /// The canonical text form in lower case (`8-4-4-4-12` hex digits), as the AMQP bridge
    /// writes message, correlation and causation ids and span attributes: written into one
    /// buffer, without `uuidString`'s upper-case copy and a second one for `lowercased()`.
    package var lowercasedString: String {
        withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { text in
                let digits: StaticString = "0123456789abcdef"
                var offset = 0
                for (index, byte) in bytes.enumerated() {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        text[offset] = UInt8(ascii: "-")
                        offset += 1
                    }
                    text[offset] = digits.utf8Start[Int(byte >> 4)]
                    text[offset + 1] = digits.utf8Start[Int(byte & 0x0F)]
                    offset += 2
                }
                return offset
            }
        }
    }

    /// The UUID whose 16 bytes are `high` then `low`, most significant byte first.
    private init(_ high: UInt64, _ low: UInt64) {
        func byte(_ word: UInt64, _ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: word >> (56 - 8 * index)) }
        self.init(
            uuid: (
                byte(high, 0), byte(high, 1), byte(high, 2), byte(high, 3), byte(high, 4), byte(high, 5), byte(high, 6), byte(high, 7),
                byte(low, 0), byte(low, 1), byte(low, 2), byte(low, 3), byte(low, 4), byte(low, 5), byte(low, 6), byte(low, 7)
            ))
    }
}
