@testable import EventSourcery
import Foundation
import Testing

/// The payload decoder gives what `JSONDecoder` gives: the same value or an error, for
/// documents it reads itself and for those it hands over.
struct PayloadDecoderTests {
    private let foundation = EventRegistry.decoder
    private var decoder: PayloadDecoder { PayloadDecoder(fallback: foundation) }

    /// Checks that both decoders agree on `json` as `T`, and whether the indexed path read it.
    private func expectSame<T: Decodable & Equatable>(
        _ type: T.Type, _ json: String, indexed: Bool, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let data = Data(json.utf8)
        let expected = Result { try foundation.decode(type, from: data) }
        let actual = Result { try decoder.decode(type, from: data) }
        switch (expected, actual) {
        case (.success(let expected), .success(let actual)):
            #expect(actual == expected, "\(json)", sourceLocation: sourceLocation)
        case (.failure, .failure):
            break
        default:
            Issue.record("JSONDecoder: \(expected); payload decoder: \(actual) for \(json)", sourceLocation: sourceLocation)
        }
        #expect((decoder.decodeIndexed(type, from: data) != nil) == indexed, "indexed: \(json)", sourceLocation: sourceLocation)
    }

    struct Order: Codable, Equatable {
        enum Status: String, Codable { case placed, paid }
        enum Priority: Int, Codable { case low = 1, high = 2 }
        struct Line: Codable, Equatable {
            var sku: String
            var quantity: UInt8
        }
        var id: String
        var amount: Int
        var total: Double
        var paid: Bool
        var note: String?
        var lines: [Line]
        var tags: [String: Int]
        var status: Status
        var priority: Priority
        var small: Int8
        var big: UInt64
    }

    static let order = #"""
        { "id": "o-1", "amount": -42, "total": 12.5, "paid": true, "note": null,
          "lines": [{"sku": "a", "quantity": 2}, {"sku": "b\u00e9\ud83d\ude00\n\"", "quantity": 255}],
          "tags": {"x": 1, "y": -2}, "status": "paid", "priority": 2, "small": -128, "big": 18446744073709551615 }
        """#

    @Test func readsPlainEventsItselfWithJSONDecodersValues() {
        expectSame(Order.self, Self.order, indexed: true)
        expectSame(Order.self, Self.order.replacingOccurrences(of: #""note": null"#, with: #""note": "hi""#), indexed: true)
        expectSame(Order.self, Self.order.replacingOccurrences(of: #""note": null, "#, with: ""), indexed: true)
        expectSame([Int].self, "[1, 2, 3]", indexed: true)
        expectSame([Int?].self, "[1, null, 3]", indexed: true)
        expectSame([[String]].self, #"[["a"], [], ["b", "c"]]"#, indexed: true)
        expectSame(String.self, #""top-level fragment""#, indexed: true)
        expectSame(Double.self, "0.1", indexed: true)
        expectSame(Double.self, "-0.0", indexed: true)
        expectSame(Double.self, "1.7976931348623157e308", indexed: true)
        expectSame(Double.self, "5e-324", indexed: true)
        expectSame(Double.self, "123456789012345678901234567890", indexed: true)
    }

    struct Dated: Codable, Equatable {
        var at: Date
        var blob: Data
        var link: URL
        var ratio: Float
        var price: Decimal
    }

    @Test func foundationTypesAreReadByJSONDecoderWithItsStrategies() {
        expectSame(
            Dated.self, #"{"at": "2026-12-01T01:02:03Z", "blob": "AQID", "link": "https://example.com/a", "ratio": 0.1, "price": 12.30}"#,
            indexed: true)
        expectSame(Dated.self, #"{"at": "yesterday", "blob": "AQID", "link": "https://e.com", "ratio": 0.1, "price": 1}"#, indexed: false)
        expectSame(
            Dated.self, #"{"at": "2026-12-01T01:02:03Z", "blob": "not base64!", "link": "x", "ratio": 1, "price": 1}"#, indexed: false)
    }

    @Test func numbersItDoesNotReadPlainlyAreJSONDecoders() {
        expectSame(Int.self, "1.0", indexed: true)
        expectSame(Int.self, "1e2", indexed: true)
        expectSame(Int.self, "1.5", indexed: false)
        expectSame(UInt.self, "-0", indexed: true)
        expectSame(UInt.self, "-1", indexed: false)
        expectSame(UInt8.self, "256", indexed: false)
        expectSame(Int.self, "9223372036854775807", indexed: true)
        expectSame(Int.self, "9223372036854775808", indexed: false)
        expectSame(Int.self, "-9223372036854775808", indexed: true)
        expectSame(Double.self, "1e400", indexed: false)
        expectSame(Int.self, "01", indexed: false)
        expectSame(Double.self, ".5", indexed: false)
        expectSame(Double.self, "1.", indexed: false)
    }

    @Test func stringsWithEscapesOrBadBytesAgree() {
        expectSame(String.self, #""\u0041\/\\\b\f\r\t""#, indexed: true)
        expectSame(String.self, #""\ud83d""#, indexed: false)
        expectSame(String.self, #""\udc00 alone""#, indexed: false)
        expectSame(String.self, #""\x""#, indexed: false)
        expectSame(String.self, "\"tab\tinside\"", indexed: false)
        let invalidUTF8 = Data([0x22, 0xC3, 0x28, 0x22])
        #expect(decoder.decodeIndexed(String.self, from: invalidUTF8) == nil)
        #expect((try? decoder.decode(String.self, from: invalidUTF8)) == (try? foundation.decode(String.self, from: invalidUTF8)))
    }

    @Test func malformedDocumentsAndWrongTypesFailAsInJSONDecoder() {
        for json in [
            #"{"id": "o-1",}"#, #"{"id" "o-1"}"#, "[1, 2", "", "nul", "\u{FEFF}[1]", "[1] 2", #"{"a": 1, "a": 2}"#,
            #"{"\u0061": 1, "a": 2}"#,
        ] {
            expectSame([String: Int].self, json, indexed: false)
        }
        expectSame(Order.self, #"{"id": 1}"#, indexed: false)
        expectSame(Order.Line.self, #"{"sku": "a"}"#, indexed: false)
        expectSame(Order.Line.self, #"{"sku": null, "quantity": 1}"#, indexed: false)
        expectSame(Order.Line.self, #"[]"#, indexed: false)
        expectSame([Int].self, #"{}"#, indexed: false)
        expectSame(Bool.self, "1", indexed: false)
        expectSame(Order.Status.self, #""shipped""#, indexed: false)
        expectSame([Int].self, String(repeating: "[", count: 300) + String(repeating: "]", count: 300), indexed: false)
    }

    enum Shape: Codable, Equatable {
        case circle(radius: Double)
        case polygon([Int], name: String?)
        case empty
    }

    final class Base: Decodable, Equatable {
        var id: Int
        var extra: String?
        init(id: Int, extra: String?) {
            self.id = id
            self.extra = extra
        }
        enum CodingKeys: String, CodingKey { case id, extra, base }
        required init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let base = try container.superDecoder(forKey: .base).container(keyedBy: CodingKeys.self)
            id = try base.decode(Int.self, forKey: .id)
            extra = try container.superDecoder().singleValueContainer().decode(String?.self)
        }
        static func == (lhs: Base, rhs: Base) -> Bool { lhs.id == rhs.id && lhs.extra == rhs.extra }
    }

    @Test func nestedContainersEnumsAndSuperDecodersAgree() {
        expectSame([Shape].self, #"[{"circle": {"radius": 2}}, {"polygon": {"_0": [1, 2], "name": null}}, {"empty": {}}]"#, indexed: true)
        expectSame(Base.self, #"{"base": {"id": 7}, "super": "x"}"#, indexed: true)
        expectSame(Base.self, #"{"base": {"id": 7}}"#, indexed: true)
        expectSame(Base.self, #"{"id": 7}"#, indexed: false)
    }

    struct PaymentTaken: Event, Equatable {
        var amount: Int
        var at: Date
        var reference: String
    }

    @Test func theRegistryDecodesEventsThroughIt() throws {
        var registry = EventRegistry()
        registry.register(PaymentTaken.self)
        let event = PaymentTaken(amount: 1250, at: Date(timeIntervalSince1970: 1_800_000_000), reference: "r-\u{e9}\"1\"")
        let encoded = try EventRegistry.encode(EventEnvelope(event))
        #expect(decoder.decodeIndexed(PaymentTaken.self, from: encoded.payload) == event)
        #expect(try registry.decode(encoded).event as? PaymentTaken == event)
    }
}
