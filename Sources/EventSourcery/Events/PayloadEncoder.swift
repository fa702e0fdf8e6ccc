import Foundation

/// Encodes events into the bytes Foundation's `JSONEncoder` writes for them (sorted keys),
/// at a fraction of its cost.
///
/// It gathers the members and elements a type encodes, then writes them as `JSONEncoder`
/// does on this platform: keys sorted by their UTF-8 bytes, strings with the same escapes
/// (`/` included), integers in decimal, floating-point numbers as their shortest description
/// without a trailing `.0`. A `Date`, `Data`, `URL` or `Decimal` is written by that
/// `JSONEncoder` itself, with its strategies. Anything it does not mirror — a non-finite
/// number, a key encoded twice, a container asked for again, `superEncoder`, a value that
/// encodes nothing — sends the whole value to `JSONEncoder`, so the bytes (and errors) are
/// always the ones it gives.
struct PayloadEncoder: Sendable {
    /// The encoder whose bytes this one writes; it must sort keys, use the default key
    /// encoding strategy and output formatting otherwise (its date and data strategies
    /// apply to the values it writes).
    let fallback: JSONEncoder

    func encode<T: Encodable>(_ value: T) throws -> Data {
        if let data = encodeGathered(value) { return data }
        return try fallback.encode(value)
    }

    /// The bytes when the gathering encoder writes `value` itself; `nil` when it goes to
    /// `JSONEncoder` as a whole.
    func encodeGathered<T: Encodable>(_ value: T) -> Data? {
        let encoder = JSONValueEncoder(fallback: fallback, codingPath: [])
        guard (try? encoder.encodeValue(value)) != nil, let gathered = encoder.value else { return nil }
        var writer = JSONByteWriter()
        guard writer.write(gathered, depth: 0) else { return nil }
        return Data(writer.bytes)
    }
}

/// What a value encoded: a scalar already written as JSON text, or a container.
private enum GatheredValue {
    case text([UInt8])
    case object(GatheredObject)
    case array(GatheredArray)
}

private final class GatheredObject {
    var members: [(key: String, value: GatheredValue)] = []
}

private final class GatheredArray {
    var elements: [GatheredValue] = []
}

/// The reason a value is not gathered; it never leaves ``PayloadEncoder``, which then asks
/// `JSONEncoder`.
private struct NotGathered: Error {}

/// A value being encoded; also its single-value container.
private final class JSONValueEncoder: Encoder, SingleValueEncodingContainer {
    let fallback: JSONEncoder
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { fallback.userInfo }
    /// What was encoded; `nil` until something was.
    private(set) var value: GatheredValue?
    /// Set when the type used the encoder in a way this one does not mirror.
    var unsupported = false

    init(fallback: JSONEncoder, codingPath: [any CodingKey]) {
        self.fallback = fallback
        self.codingPath = codingPath
    }

    /// Encodes `value` into ``value``; throws when the result would not be `JSONEncoder`'s.
    func encodeValue<T: Encodable>(_ value: T) throws {
        self.value = try gather(value, key: nil)
        if unsupported { throw NotGathered() }
    }

    // MARK: Gathering values

    /// `value` as JSON: the scalars this encoder writes itself, `JSONEncoder`'s bytes for
    /// Foundation's types, `value.encode(to:)` into a child encoder for the rest.
    func gather<T: Encodable>(_ value: T, key: (any CodingKey)?) throws -> GatheredValue {
        switch ObjectIdentifier(T.self) {
        case ObjectIdentifier(String.self): return .text(Self.quoted(value as! String))
        case ObjectIdentifier(Int.self): return Self.integer(value as! Int)
        case ObjectIdentifier(Bool.self): return .text(Array(((value as! Bool) ? "true" : "false").utf8))
        case ObjectIdentifier(Double.self): return try Self.float(value as! Double)
        case ObjectIdentifier(Int64.self): return Self.integer(value as! Int64)
        case ObjectIdentifier(Int32.self): return Self.integer(value as! Int32)
        case ObjectIdentifier(Int16.self): return Self.integer(value as! Int16)
        case ObjectIdentifier(Int8.self): return Self.integer(value as! Int8)
        case ObjectIdentifier(UInt.self): return Self.integer(value as! UInt)
        case ObjectIdentifier(UInt64.self): return Self.integer(value as! UInt64)
        case ObjectIdentifier(UInt32.self): return Self.integer(value as! UInt32)
        case ObjectIdentifier(UInt16.self): return Self.integer(value as! UInt16)
        case ObjectIdentifier(UInt8.self): return Self.integer(value as! UInt8)
        case ObjectIdentifier(Float.self): return try Self.float(value as! Float)
        case ObjectIdentifier(Date.self), ObjectIdentifier(Data.self), ObjectIdentifier(URL.self), ObjectIdentifier(Decimal.self):
            return .text(Array(try fallback.encode(value)))
        default:
            let child = JSONValueEncoder(fallback: fallback, codingPath: key.map { codingPath + [$0] } ?? codingPath)
            try value.encode(to: child)
            guard !child.unsupported, let gathered = child.value else { throw NotGathered() }
            return gathered
        }
    }

    static func integer(_ number: some FixedWidthInteger) -> GatheredValue {
        .text(Array(number.description.utf8))
    }

    /// A finite number as `JSONEncoder` writes it: its description without a trailing `.0`.
    static func float<F: BinaryFloatingPoint & CustomStringConvertible>(_ number: F) throws -> GatheredValue {
        guard number.isFinite else { throw NotGathered() }
        var text = number.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return .text(Array(text.utf8))
    }

    /// A string in quotes with `JSONEncoder`'s escapes.
    static func quoted(_ string: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(string.utf8.count + 2)
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"):
                bytes.append(UInt8(ascii: "\\"))
                bytes.append(byte)
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
        return bytes
    }

    // MARK: Encoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let object = GatheredObject()
        if value != nil { unsupported = true } else { value = .object(object) }
        return KeyedEncodingContainer(JSONKeyedEncodingContainer<Key>(encoder: self, object: object, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let array = GatheredArray()
        if value != nil { unsupported = true } else { value = .array(array) }
        return JSONUnkeyedEncodingContainer(encoder: self, array: array, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { self }

    // MARK: SingleValueEncodingContainer

    private func set(_ gathered: GatheredValue) {
        if value != nil { unsupported = true } else { value = gathered }
    }

    func encodeNil() throws { set(.text(Array("null".utf8))) }
    func encode<T: Encodable>(_ value: T) throws { set(try gather(value, key: nil)) }
}

private struct JSONKeyedEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: JSONValueEncoder
    let object: GatheredObject
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws {
        object.members.append((key.stringValue, .text(Array("null".utf8))))
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        object.members.append((key.stringValue, try encoder.gather(value, key: key)))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested = GatheredObject()
        object.members.append((key.stringValue, .object(nested)))
        return KeyedEncodingContainer(
            JSONKeyedEncodingContainer<NestedKey>(encoder: encoder, object: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = GatheredArray()
        object.members.append((key.stringValue, .array(nested)))
        return JSONUnkeyedEncodingContainer(encoder: encoder, array: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        encoder.unsupported = true
        return encoder
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        encoder.unsupported = true
        return encoder
    }
}

private struct JSONUnkeyedEncodingContainer: UnkeyedEncodingContainer {
    let encoder: JSONValueEncoder
    let array: GatheredArray
    let codingPath: [any CodingKey]
    var count: Int { array.elements.count }

    mutating func encodeNil() throws { array.elements.append(.text(Array("null".utf8))) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        array.elements.append(try encoder.gather(value, key: JSONIndexKey(intValue: array.elements.count)))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = GatheredObject()
        let key = JSONIndexKey(intValue: array.elements.count)
        array.elements.append(.object(nested))
        return KeyedEncodingContainer(
            JSONKeyedEncodingContainer<NestedKey>(encoder: encoder, object: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = GatheredArray()
        let key = JSONIndexKey(intValue: array.elements.count)
        array.elements.append(.array(nested))
        return JSONUnkeyedEncodingContainer(encoder: encoder, array: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        encoder.unsupported = true
        return encoder
    }
}

/// Writes gathered values as compact JSON with sorted keys.
private struct JSONByteWriter {
    var bytes: [UInt8] = []

    /// Writes `value`; false when `JSONEncoder` would write something else (a key twice) or
    /// refuse (nesting deeper than 512).
    mutating func write(_ value: GatheredValue, depth: Int) -> Bool {
        guard depth < 512 else { return false }
        switch value {
        case .text(let text):
            bytes.append(contentsOf: text)
        case .array(let array):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in array.elements.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                guard write(element, depth: depth + 1) else { return false }
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            let members = object.members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            // Keys that differ in bytes may still be one key to `JSONEncoder`'s dictionary.
            if members.contains(where: { !$0.key.utf8.allSatisfy { $0 < 0x80 } }), Set(members.map(\.key)).count != members.count {
                return false
            }
            bytes.append(UInt8(ascii: "{"))
            for (index, member) in members.enumerated() {
                if index > 0 {
                    guard member.key != members[index - 1].key else { return false }
                    bytes.append(UInt8(ascii: ","))
                }
                bytes.append(contentsOf: JSONValueEncoder.quoted(member.key))
                bytes.append(UInt8(ascii: ":"))
                guard write(member.value, depth: depth + 1) else { return false }
            }
            bytes.append(UInt8(ascii: "}"))
        }
        return true
    }
}
