@testable import EventSourcery
import Foundation
import Testing

/// The payload encoder writes the bytes `JSONEncoder` writes (sorted keys), or lets it write
/// them; both fail alike.
struct PayloadEncoderTests {
    private let foundation = EventRegistry.encoder
    private var encoder: PayloadEncoder { PayloadEncoder(fallback: foundation) }

    /// Checks that both encoders write the same bytes for `value` (or both fail), and
    /// whether the gathering path wrote them.
    private func expectSame<T: Encodable>(_ value: T, gathered: Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        let expected = Result { try foundation.encode(value) }
        let actual = Result { try encoder.encode(value) }
        switch (expected, actual) {
        case (.success(let expected), .success(let actual)):
            #expect(
                String(decoding: actual, as: UTF8.self) == String(decoding: expected, as: UTF8.self), sourceLocation: sourceLocation)
            #expect(actual == expected, sourceLocation: sourceLocation)
        case (.failure, .failure):
            break
        default:
            Issue.record("JSONEncoder: \(expected); payload encoder: \(actual)", sourceLocation: sourceLocation)
        }
        #expect((encoder.encodeGathered(value) != nil) == gathered, sourceLocation: sourceLocation)
    }

    private var order: PayloadDecoderTests.Order {
        PayloadDecoderTests.Order(
            id: "o-1/\"quoted\"\\ \u{1}\u{8}\u{c}\n\r\t\u{1f} é 😀", amount: -42, total: 12.5, paid: true, note: nil,
            lines: [.init(sku: "a", quantity: 2), .init(sku: "b", quantity: 255)], tags: ["zeta": 1, "alpha": -2, "Beta": 3, "": 0],
            status: .paid, priority: .high, small: .min, big: .max)
    }

    @Test func writesPlainEventsItselfWithJSONEncodersBytes() {
        expectSame(order, gathered: true)
        var withNote = order
        withNote.note = "a note"
        expectSame(withNote, gathered: true)
        expectSame([1, 2, 3], gathered: true)
        expectSame([Int?.none, 1], gathered: true)
        expectSame("top-level fragment", gathered: true)
        expectSame([String: [String]](), gathered: true)
        for number in [0.1, 1.0, -0.0, 1e-7, 1e21, 123456789.125, .leastNonzeroMagnitude, .greatestFiniteMagnitude, -2.5e-300] {
            expectSame(["value": number], gathered: true)
        }
        expectSame([Float(0.1), 1, 3.4e38], gathered: true)
        expectSame([Int.min, Int.max], gathered: true)
    }

    struct Dated: Encodable {
        var at = Date(timeIntervalSince1970: 1_800_000_000.25)
        var blob = Data([1, 2, 3])
        var link = URL(string: "https://example.com/a/b?c=d")!
        var price = Decimal(string: "12.30")!
        var maybe: Date? = Date(timeIntervalSince1970: 0)
    }

    @Test func foundationTypesAreWrittenByJSONEncoderWithItsStrategies() {
        expectSame(Dated(), gathered: true)
    }

    struct TwiceTheSameKey: Encodable {
        enum CodingKeys: String, CodingKey { case a }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(1, forKey: .a)
            try container.encode(2, forKey: .a)
        }
    }

    struct WithSuper: Encodable {
        enum CodingKeys: String, CodingKey { case a }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(1, forKey: .a)
            try 2.encode(to: container.superEncoder())
        }
    }

    /// "é" precomposed and decomposed: two byte strings, one key to `JSONEncoder`'s dictionary.
    struct CanonicallyEqualKeys: Encodable {
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: JSONIndexKey.self)
            try container.encode(1, forKey: JSONIndexKey(stringValue: "\u{e9}"))
            try container.encode(2, forKey: JSONIndexKey(stringValue: "e\u{301}"))
        }
    }

    struct Nothing: Encodable {
        func encode(to encoder: any Encoder) throws {}
    }

    struct Empty: Encodable {}

    enum Shape: Encodable {
        case circle(radius: Double)
        case polygon([Int], name: String?)
    }

    @Test func whatItDoesNotMirrorIsWrittenOrRefusedByJSONEncoder() {
        expectSame(TwiceTheSameKey(), gathered: false)
        expectSame(WithSuper(), gathered: false)
        expectSame(Nothing(), gathered: false)
        expectSame(["x": Nothing()], gathered: false)
        expectSame(["value": Double.nan], gathered: false)
        expectSame([Float.infinity], gathered: false)
        expectSame(CanonicallyEqualKeys(), gathered: false)
        expectSame(["\u{e9}": 1, "b": 2], gathered: true)
    }

    @Test func nestedContainersAndEmptyValuesAgree() {
        expectSame(Empty(), gathered: true)
        expectSame([Empty()], gathered: true)
        expectSame([Shape.circle(radius: 2), .polygon([1, 2], name: nil), .polygon([], name: "p")], gathered: true)
    }

    @Test func payloadsRoundTripThroughTheRegistry() throws {
        var registry = EventRegistry()
        registry.register(PayloadDecoderTests.PaymentTaken.self)
        let event = PayloadDecoderTests.PaymentTaken(amount: 1250, at: Date(timeIntervalSince1970: 1_800_000_000), reference: "r/1")
        let encoded = try EventRegistry.encode(EventEnvelope(event))
        #expect(encoded.payload == (try foundation.encode(event)))
        #expect(try registry.decode(encoded).event as? PayloadDecoderTests.PaymentTaken == event)
    }
}
