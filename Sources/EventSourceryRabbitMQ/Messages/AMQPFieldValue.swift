/// A table of AMQP field values, as used for message headers and declaration arguments.
public typealias AMQPTable = [String: AMQPFieldValue]

/// A value in an AMQP field table (message headers, queue and exchange arguments).
///
/// Integers are sent as signed 32-bit (`I`) or signed 64-bit (`l`) values. When a table is
/// read back, every integer kind the broker or another client may use (8, 16, 32 bit signed
/// and unsigned) arrives as ``int32(_:)``, except unsigned 32-bit and all 64-bit kinds, which
/// arrive as ``int64(_:)``; use ``intValue`` to read either.
public enum AMQPFieldValue: Sendable, Hashable {
    /// A UTF-8 string (`S`).
    case string(String)
    /// A boolean (`t`).
    case bool(Bool)
    /// A signed 32-bit integer (`I`).
    case int32(Int32)
    /// A signed 64-bit integer (`l`).
    case int64(Int64)
    /// A 64-bit floating-point number (`d`); 32-bit floats are widened.
    case double(Double)
    /// A timestamp in seconds since 1970 (`T`).
    case timestamp(UInt64)
    /// A nested table (`F`).
    case table(AMQPTable)
    /// An array (`A`).
    case array([AMQPFieldValue])
    /// Raw bytes (`x`).
    case bytes([UInt8])
    /// No value (`V`).
    case void

    /// The value as an `Int` if it is any integer kind.
    public var intValue: Int? {
        switch self {
        case .int32(let value): return Int(value)
        case .int64(let value): return Int(value)
        default: return nil
        }
    }

    /// The value as a `String` if it is a string.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The value as a `Bool` if it is a boolean.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }
}

extension AMQPFieldValue: ExpressibleByStringLiteral {
    /// String literals become ``string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
}

extension AMQPFieldValue: ExpressibleByIntegerLiteral {
    /// Integer literals become ``int64(_:)``.
    public init(integerLiteral value: Int64) { self = .int64(value) }
}

extension AMQPFieldValue: ExpressibleByBooleanLiteral {
    /// Boolean literals become ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}
