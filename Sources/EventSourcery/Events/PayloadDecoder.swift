import Foundation

/// Decodes event payloads into their registered types with Foundation's results at a
/// fraction of `JSONDecoder`'s cost.
///
/// `JSONDecoder` builds a dictionary of every object's keys and boxes every value before a
/// type reads a field; a consumer decodes every delivery. This decoder indexes the document
/// once (``JSONIndex``) and reads objects, arrays, strings, booleans, integers and doubles
/// straight from the bytes. Everything else — a `Date`, `Data`, `URL`, `Decimal` or `Float`, a
/// number written with a fraction or exponent read as an integer, a string with a lone
/// surrogate escape, a document that is not strict JSON or an object with a repeated key — is
/// read by the `JSONDecoder` it stands in for, with that decoder's strategies: a single value
/// from its own bytes, a whole document from the start. Any error also sends the whole
/// payload to that decoder, so values and errors are always the ones `JSONDecoder` gives.
struct PayloadDecoder: Sendable {
    /// The decoder whose results this one gives; it must use the default key decoding
    /// strategy (its date, data and float strategies apply to the values it reads).
    let fallback: JSONDecoder

    func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if let value = decodeIndexed(type, from: data) { return value }
        return try fallback.decode(type, from: data)
    }

    /// The value when the indexed decoding reads it; `nil` when the document goes to
    /// `JSONDecoder` as a whole.
    func decodeIndexed<T: Decodable>(_ type: T.Type, from data: Data) -> T? {
        guard let index = JSONIndex(Array(data)) else { return nil }
        return try? JSONValueDecoder(index, token: 0, fallback: fallback, codingPath: []).decode(T.self)
    }
}

/// The values of a JSON document in document order, each with its place in the bytes; an
/// object's members follow it as key, value, key, value.
struct JSONIndex {
    enum Kind: UInt8 {
        case object, array, string, escapedString, integer, number, `true`, `false`, null
    }

    struct Token {
        var kind: Kind
        /// The value's bytes, quotes and brackets included.
        var start: Int32
        var end: Int32
        /// The index of the token after this value and everything inside it.
        var after: Int32
        /// Members of an object, elements of an array.
        var count: Int32
    }

    let bytes: [UInt8]
    private(set) var tokens: [Token] = []

    /// Indexes `bytes`, or returns `nil` when they are not one strict JSON value (RFC 8259)
    /// nested at most 256 deep.
    init?(_ bytes: [UInt8]) {
        guard bytes.count < Int32.max else { return nil }
        self.bytes = bytes
        tokens.reserveCapacity(16)
        var scanner = Scanner(bytes: bytes)
        guard scanner.scanDocument(into: &tokens) else { return nil }
        // A null the decoder hands out for an absent `super` key.
        tokens.append(Token(kind: .null, start: 0, end: 0, after: Int32(tokens.count + 1), count: 0))
    }

    var nullToken: Int { tokens.count - 1 }

    private struct Scanner {
        let bytes: [UInt8]
        var position = 0
        var depth = 0

        mutating func scanDocument(into tokens: inout [Token]) -> Bool {
            skipWhitespace()
            guard scanValue(into: &tokens) else { return false }
            skipWhitespace()
            return position == bytes.count
        }

        private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        private mutating func skipWhitespace() {
            while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        private mutating func scanValue(into tokens: inout [Token]) -> Bool {
            switch current {
            case UInt8(ascii: "{"): return scanContainer(.object, closing: UInt8(ascii: "}"), into: &tokens)
            case UInt8(ascii: "["): return scanContainer(.array, closing: UInt8(ascii: "]"), into: &tokens)
            case UInt8(ascii: "\""): return scanString(into: &tokens)
            case UInt8(ascii: "t"): return scanLiteral("true", .true, into: &tokens)
            case UInt8(ascii: "f"): return scanLiteral("false", .false, into: &tokens)
            case UInt8(ascii: "n"): return scanLiteral("null", .null, into: &tokens)
            case .some: return scanNumber(into: &tokens)
            case .none: return false
            }
        }

        private mutating func scanContainer(_ kind: Kind, closing: UInt8, into tokens: inout [Token]) -> Bool {
            depth += 1
            guard depth <= 256 else { return false }
            let index = tokens.count
            let start = position
            tokens.append(Token(kind: kind, start: Int32(start), end: 0, after: 0, count: 0))
            position += 1
            skipWhitespace()
            var count: Int32 = 0
            if current == closing {
                position += 1
            } else {
                while true {
                    if kind == .object {
                        guard current == UInt8(ascii: "\""), scanString(into: &tokens) else { return false }
                        skipWhitespace()
                        guard current == UInt8(ascii: ":") else { return false }
                        position += 1
                        skipWhitespace()
                    }
                    guard scanValue(into: &tokens) else { return false }
                    count += 1
                    skipWhitespace()
                    if current == UInt8(ascii: ",") {
                        position += 1
                        skipWhitespace()
                    } else if current == closing {
                        position += 1
                        break
                    } else {
                        return false
                    }
                }
            }
            tokens[index].end = Int32(position)
            tokens[index].count = count
            tokens[index].after = Int32(tokens.count)
            depth -= 1
            return kind == .array || hasDistinctKeys(object: index, in: tokens)
        }

        /// Whether the keys of an object are written without escapes and differ from one
        /// another (`JSONDecoder`'s choice among repeated keys is left to it).
        private func hasDistinctKeys(object: Int, in tokens: [Token]) -> Bool {
            let count = Int(tokens[object].count)
            func key(after key: Int) -> Int { Int(tokens[Int(tokens[key].after)].after) }
            func text(_ key: Int) -> ArraySlice<UInt8> { bytes[Int(tokens[key].start)..<Int(tokens[key].end)] }
            var first = object + 1
            if count > 32 {
                var seen = Set<ArraySlice<UInt8>>(minimumCapacity: count)
                for _ in 0..<count {
                    guard tokens[first].kind == .string, seen.insert(text(first)).inserted else { return false }
                    first = key(after: first)
                }
                return true
            }
            for index in 0..<count {
                guard tokens[first].kind == .string else { return false }
                var second = key(after: first)
                for _ in (index + 1)..<max(count, index + 1) {
                    if text(first) == text(second) { return false }
                    second = key(after: second)
                }
                first = key(after: first)
            }
            return true
        }

        private mutating func scanString(into tokens: inout [Token]) -> Bool {
            let start = position
            position += 1
            var escaped = false
            while let byte = current {
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    tokens.append(
                        Token(
                            kind: escaped ? .escapedString : .string, start: Int32(start), end: Int32(position),
                            after: Int32(tokens.count + 1), count: 0))
                    return true
                case UInt8(ascii: "\\"):
                    escaped = true
                    position += 1
                    guard let escape = current else { return false }
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        position += 1
                    case UInt8(ascii: "u"):
                        guard position + 4 < bytes.count, bytes[position + 1..<position + 5].allSatisfy({ $0.isHexDigit }) else {
                            return false
                        }
                        position += 5
                    default:
                        return false
                    }
                case 0..<0x20:
                    return false
                default:
                    position += 1
                }
            }
            return false
        }

        private mutating func scanLiteral(_ literal: StaticString, _ kind: Kind, into tokens: inout [Token]) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { return false }
            for offset in 0..<count where bytes[position + offset] != literal.utf8Start[offset] { return false }
            tokens.append(
                Token(kind: kind, start: Int32(position), end: Int32(position + count), after: Int32(tokens.count + 1), count: 0))
            position += count
            return true
        }

        private mutating func scanNumber(into tokens: inout [Token]) -> Bool {
            let start = position
            var integer = true
            if current == UInt8(ascii: "-") { position += 1 }
            if current == UInt8(ascii: "0") {
                position += 1
            } else {
                guard scanDigits() else { return false }
            }
            if current == UInt8(ascii: ".") {
                integer = false
                position += 1
                guard scanDigits() else { return false }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                integer = false
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard scanDigits() else { return false }
            }
            tokens.append(
                Token(
                    kind: integer ? .integer : .number, start: Int32(start), end: Int32(position), after: Int32(tokens.count + 1),
                    count: 0))
            return true
        }

        /// One or more digits.
        private mutating func scanDigits() -> Bool {
            let start = position
            while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") { position += 1 }
            return position > start
        }
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}

/// A value of an indexed document being decoded; also its single-value container.
private final class JSONValueDecoder: Decoder, SingleValueDecodingContainer {
    let index: JSONIndex
    let token: Int
    let fallback: JSONDecoder
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { fallback.userInfo }

    init(_ index: JSONIndex, token: Int, fallback: JSONDecoder, codingPath: [any CodingKey]) {
        self.index = index
        self.token = token
        self.fallback = fallback
        self.codingPath = codingPath
    }

    /// The reason a value is not what was asked for; the error never leaves the decoder
    /// (``PayloadDecoder`` starts over with `JSONDecoder`, which tells what is wrong).
    struct Mismatch: Error {}

    // MARK: Reading values

    func kind(_ token: Int) -> JSONIndex.Kind { index.tokens[token].kind }

    /// The value at `token` as `T`: the types this decoder reads itself, `JSONDecoder` for
    /// Foundation's types and `Float`, `T(from:)` for the rest.
    func value<T: Decodable>(_ type: T.Type, at token: Int, key: @autoclosure () -> (any CodingKey)?) throws -> T {
        switch type {
        case is String.Type: return try string(at: token) as! T
        case is Int.Type: return try integer(Int.self, at: token) as! T
        case is Bool.Type: return try bool(at: token) as! T
        case is Double.Type: return try double(at: token) as! T
        case is Int64.Type: return try integer(Int64.self, at: token) as! T
        case is Int32.Type: return try integer(Int32.self, at: token) as! T
        case is Int16.Type: return try integer(Int16.self, at: token) as! T
        case is Int8.Type: return try integer(Int8.self, at: token) as! T
        case is UInt.Type: return try integer(UInt.self, at: token) as! T
        case is UInt64.Type: return try integer(UInt64.self, at: token) as! T
        case is UInt32.Type: return try integer(UInt32.self, at: token) as! T
        case is UInt16.Type: return try integer(UInt16.self, at: token) as! T
        case is UInt8.Type: return try integer(UInt8.self, at: token) as! T
        case is Float.Type, is Date.Type, is Data.Type, is URL.Type, is Decimal.Type: return try foundation(type, at: token)
        default:
            let path = key().map { codingPath + [$0] } ?? codingPath
            return try T(from: JSONValueDecoder(index, token: token, fallback: fallback, codingPath: path))
        }
    }

    /// The value at `token` decoded by `JSONDecoder` from its own bytes.
    func foundation<T: Decodable>(_ type: T.Type, at token: Int) throws -> T {
        let value = index.tokens[token]
        return try fallback.decode(type, from: Data(index.bytes[Int(value.start)..<Int(value.end)]))
    }

    func string(at token: Int) throws -> String {
        let value = index.tokens[token]
        guard value.kind == .string || value.kind == .escapedString else { throw Mismatch() }
        let content = index.bytes[Int(value.start) + 1..<Int(value.end) - 1]
        let string = value.kind == .string ? String(validating: content, as: UTF8.self) : Self.unescaped(content)
        return try string ?? foundation(String.self, at: token)
    }

    /// A string's content with its escapes replaced; `nil` when it is not valid UTF-8 or
    /// an escape names a lone surrogate.
    private static func unescaped(_ content: ArraySlice<UInt8>) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(content.count)
        var position = content.startIndex
        func hex(at start: Int) -> UInt32 {
            content[start..<start + 4].reduce(0) { value, digit in
                let nibble: UInt8 =
                    switch digit {
                    case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
                    case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
                    default: digit - UInt8(ascii: "A") + 10
                    }
                return value << 4 | UInt32(nibble)
            }
        }
        while position < content.endIndex {
            let byte = content[position]
            guard byte == UInt8(ascii: "\\") else {
                bytes.append(byte)
                position += 1
                continue
            }
            let escape = content[position + 1]
            position += 2
            switch escape {
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex(at: position)
                position += 4
                if (0xD800..<0xDC00).contains(scalar) {
                    guard position + 6 <= content.endIndex, content[position] == UInt8(ascii: "\\"),
                        content[position + 1] == UInt8(ascii: "u")
                    else { return nil }
                    let low = hex(at: position + 2)
                    guard (0xDC00..<0xE000).contains(low) else { return nil }
                    position += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let unicode = Unicode.Scalar(scalar) else { return nil }
                bytes.append(contentsOf: UTF8.encode(unicode)!)
            default: bytes.append(escape)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    func integer<I: FixedWidthInteger & Decodable>(_ type: I.Type, at token: Int) throws -> I {
        let value = index.tokens[token]
        switch value.kind {
        case .integer:
            var position = Int(value.start)
            let negative = index.bytes[position] == UInt8(ascii: "-")
            if negative { position += 1 }
            var result: I = 0
            var overflow = false
            while position < Int(value.end), !overflow {
                let digit = I(index.bytes[position] - UInt8(ascii: "0"))
                (result, overflow) = result.multipliedReportingOverflow(by: 10)
                if !overflow {
                    (result, overflow) = negative ? result.subtractingReportingOverflow(digit) : result.addingReportingOverflow(digit)
                }
                position += 1
            }
            // Out of range, or `-0` for an unsigned type: as JSONDecoder decides.
            if !overflow && !(negative && result == 0) { return result }
            return try foundation(type, at: token)
        case .number:
            return try foundation(type, at: token)
        default:
            throw Mismatch()
        }
    }

    func double(at token: Int) throws -> Double {
        let value = index.tokens[token]
        guard value.kind == .integer || value.kind == .number else { throw Mismatch() }
        // Both parse with correct rounding; a value out of range is JSONDecoder's to report.
        if let double = Double(String(decoding: index.bytes[Int(value.start)..<Int(value.end)], as: UTF8.self)), double.isFinite {
            return double
        }
        return try foundation(Double.self, at: token)
    }

    func bool(at token: Int) throws -> Bool {
        switch kind(token) {
        case .true: return true
        case .false: return false
        default: throw Mismatch()
        }
    }

    // MARK: Decoder

    /// A member of an object: its key and its value's token.
    struct Member {
        var key: String
        var value: Int
    }

    /// The members of the object at ``token``, in document order (built outside the generic
    /// keyed container, whose generic context would look up the array's type on every call).
    func members() throws -> [Member] {
        let object = index.tokens[token]
        var members: [Member] = []
        members.reserveCapacity(Int(object.count))
        var key = token + 1
        for _ in 0..<object.count {
            let value = Int(index.tokens[key].after)
            members.append(Member(key: try string(at: key), value: value))
            key = Int(index.tokens[value].after)
        }
        return members
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard kind(token) == .object else { throw Mismatch() }
        return KeyedDecodingContainer(try JSONKeyedContainer<Key>(decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard kind(token) == .array else { throw Mismatch() }
        return JSONUnkeyedContainer(decoder: self)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    // MARK: SingleValueDecodingContainer

    func decodeNil() -> Bool { kind(token) == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try bool(at: token) }
    func decode(_ type: String.Type) throws -> String { try string(at: token) }
    func decode(_ type: Double.Type) throws -> Double { try double(at: token) }
    func decode(_ type: Float.Type) throws -> Float { try foundation(type, at: token) }
    func decode(_ type: Int.Type) throws -> Int { try integer(type, at: token) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type, at: token) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type, at: token) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type, at: token) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type, at: token) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type, at: token) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type, at: token) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type, at: token) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type, at: token) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type, at: token) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try value(type, at: token, key: nil) }
}

/// The members of an object, found by comparing keys in order (objects of events are small).
private struct JSONKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: JSONValueDecoder
    private let members: [JSONValueDecoder.Member]

    init(decoder: JSONValueDecoder) throws {
        self.decoder = decoder
        members = try decoder.members()
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { members.compactMap { Key(stringValue: $0.key) } }

    private func token(for key: Key) throws -> Int {
        let name = key.stringValue
        for member in members where member.key == name { return member.value }
        throw JSONValueDecoder.Mismatch()
    }

    func contains(_ key: Key) -> Bool { (try? token(for: key)) != nil }
    func decodeNil(forKey key: Key) throws -> Bool { decoder.kind(try token(for: key)) == .null }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decoder.bool(at: token(for: key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decoder.string(at: token(for: key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decoder.double(at: token(for: key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decoder.foundation(type, at: token(for: key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decoder.integer(type, at: token(for: key)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decoder.integer(type, at: token(for: key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decoder.integer(type, at: token(for: key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decoder.integer(type, at: token(for: key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decoder.integer(type, at: token(for: key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decoder.integer(type, at: token(for: key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decoder.integer(type, at: token(for: key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decoder.integer(type, at: token(for: key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decoder.integer(type, at: token(for: key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decoder.integer(type, at: token(for: key)) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decoder.value(type, at: token(for: key), key: key)
    }

    private func child(at token: Int, key: any CodingKey) -> JSONValueDecoder {
        JSONValueDecoder(decoder.index, token: token, fallback: decoder.fallback, codingPath: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try child(at: token(for: key), key: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try child(at: token(for: key), key: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        let key = JSONIndexKey(stringValue: "super")
        return child(at: members.first { $0.key == "super" }?.value ?? decoder.index.nullToken, key: key)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        child(at: (try? token(for: key)) ?? decoder.index.nullToken, key: key)
    }
}

/// The elements of an array, in order.
private struct JSONUnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: JSONValueDecoder
    private var element: Int
    let count: Int?
    private(set) var currentIndex = 0

    init(decoder: JSONValueDecoder) {
        self.decoder = decoder
        element = decoder.token + 1
        count = Int(decoder.index.tokens[decoder.token].count)
    }

    var codingPath: [any CodingKey] { decoder.codingPath }
    var isAtEnd: Bool { currentIndex >= count! }

    /// Reads the current element and moves to the next one when `read` succeeds.
    private mutating func next<T>(_ read: (JSONValueDecoder, Int) throws -> T) throws -> T {
        guard !isAtEnd else { throw JSONValueDecoder.Mismatch() }
        let value = try read(decoder, element)
        element = Int(decoder.index.tokens[element].after)
        currentIndex += 1
        return value
    }

    private var key: JSONIndexKey { JSONIndexKey(intValue: currentIndex) }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { throw JSONValueDecoder.Mismatch() }
        guard decoder.kind(element) == .null else { return false }
        return try next { _, _ in true }
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try next { try $0.bool(at: $1) } }
    mutating func decode(_ type: String.Type) throws -> String { try next { try $0.string(at: $1) } }
    mutating func decode(_ type: Double.Type) throws -> Double { try next { try $0.double(at: $1) } }
    mutating func decode(_ type: Float.Type) throws -> Float { try next { try $0.foundation(type, at: $1) } }
    mutating func decode(_ type: Int.Type) throws -> Int { try next { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try next { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try next { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try next { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try next { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try next { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try next { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try next { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try next { try $0.integer(type, at: $1) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try next { try $0.integer(type, at: $1) } }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let key = key
        return try next { try $0.value(type, at: $1, key: key) }
    }

    private mutating func child() throws -> JSONValueDecoder {
        let key = key
        return try next { decoder, element in
            JSONValueDecoder(decoder.index, token: element, fallback: decoder.fallback, codingPath: decoder.codingPath + [key])
        }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        guard !isAtEnd, decoder.kind(element) == .object else { throw JSONValueDecoder.Mismatch() }
        return try child().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard !isAtEnd, decoder.kind(element) == .array else { throw JSONValueDecoder.Mismatch() }
        return try child().unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { try child() }
}

/// A key of a coding path: an array index or `super`.
struct JSONIndexKey: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(stringValue: String) {
        self.stringValue = stringValue
        intValue = nil
    }

    init(intValue: Int) {
        stringValue = "Index \(intValue)"
        self.intValue = intValue
    }
}
