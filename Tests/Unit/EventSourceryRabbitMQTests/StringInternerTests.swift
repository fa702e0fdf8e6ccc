import CRabbitMQ
@testable import EventSourceryRabbitMQ
import Testing

struct StringInternerTests {
    /// Runs `body` with `bytes` as rabbitmq-c hands them over.
    private func withBytes<T>(_ bytes: [UInt8], _ body: (amqp_bytes_t) -> T) -> T {
        var bytes = bytes
        return bytes.withUnsafeMutableBytes { body(amqp_bytes_t(len: $0.count, bytes: $0.baseAddress)) }
    }

    @Test func givesTheStringOfTheBytesWhetherCachedOrNot() {
        var interner = StringInterner()
        let names = ["amq.ctag-0123456789abcdefghijklmn", "orders.events", "orders.OrderPlaced", "orders.OrderPlaced", "x", ""]
        // Twice over, so the second round reads from the slots the first one filled.
        for name in names + names {
            #expect(withBytes(Array(name.utf8)) { interner.string($0) } == name)
        }
    }

    @Test func stringsSharingASlotReplaceEachOther() {
        var interner = StringInterner()
        // Same length and last byte: the same slot.
        let first = "payments.OrderPaid", second = "invoices.OrderPaid"
        for name in [first, second, first, second] {
            #expect(withBytes(Array(name.utf8)) { interner.string($0) } == name)
        }
    }

    @Test func invalidUTF8IsRepairedAsWithoutTheCache() {
        var interner = StringInterner()
        let invalid: [UInt8] = [0x61, 0xC3, 0x28, 0x62]
        let expected = withBytes(invalid) { CDecode.string($0) }
        #expect(withBytes(invalid) { interner.string($0) } == expected)
        #expect(withBytes(invalid) { interner.string($0) } == expected)
        #expect(expected.contains("\u{FFFD}"))
    }
}
