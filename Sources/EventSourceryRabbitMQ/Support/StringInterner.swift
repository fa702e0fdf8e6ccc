import CRabbitMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Recently decoded strings, handed out again when the same bytes arrive: every delivery
/// carries its consumer tag, exchange, routing key, content type, type and app id, mostly
/// the same few values, and a string longer than 15 bytes costs an allocation each time.
///
/// Sixteen slots chosen by length and last byte; a slot keeps the last string stored in it.
/// Used by one thread (the connection's), like the connection that owns it.
struct StringInterner {
    private var slots = [String?](repeating: nil, count: 16)

    /// The string of `bytes` (invalid UTF-8 repaired, as ``CDecode/string(_:)`` does).
    mutating func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let pointer = bytes.bytes else { return "" }
        let last = pointer.load(fromByteOffset: bytes.len - 1, as: UInt8.self)
        let slot = (bytes.len &* 7 &+ Int(last)) & (slots.count - 1)
        if let cached = slots[slot], cached.utf8.count == bytes.len,
            cached.utf8.withContiguousStorageIfAvailable({ memcmp($0.baseAddress!, pointer, bytes.len) == 0 }) == true
        {
            return cached
        }
        let string = CDecode.string(bytes)
        slots[slot] = string
        return string
    }
}
