import CRabbitMQ
import Foundation

/// Scratch memory for building the C structures of one rabbitmq-c call (strings, tables,
/// properties). Pointers stay valid until ``reset()``; blocks are never moved.
///
/// Thread-confined: owned by one connection thread.
final class Arena {
    private var blocks: [(pointer: UnsafeMutableRawPointer, size: Int)] = []
    private var current = 0
    private var used = 0
    private let blockSize: Int

    init(blockSize: Int = 16 * 1024) {
        self.blockSize = blockSize
    }

    deinit {
        for block in blocks { block.pointer.deallocate() }
    }

    /// Frees everything allocated since the last reset (keeps the first block).
    func reset() {
        if blocks.count > 1 {
            for block in blocks.dropFirst() { block.pointer.deallocate() }
            blocks.removeSubrange(1...)
        }
        current = 0
        used = 0
    }

    func allocate(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let size = max(byteCount, 1)
        if !blocks.isEmpty {
            let aligned = (used + alignment - 1) & ~(alignment - 1)
            if aligned + size <= blocks[current].size {
                used = aligned + size
                return blocks[current].pointer + aligned
            }
        }
        let newSize = max(blockSize, size + alignment)
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: newSize, alignment: 16)
        blocks.append((pointer, newSize))
        current = blocks.count - 1
        used = size
        return pointer
    }

    func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        allocate(byteCount: MemoryLayout<T>.stride * max(count, 1), alignment: MemoryLayout<T>.alignment)
            .bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// Copies a string's UTF-8 bytes (not NUL-terminated).
    func bytes(_ string: String) -> amqp_bytes_t {
        var string = string
        return string.withUTF8 { utf8 in bytes(UnsafeRawBufferPointer(utf8)) }
    }

    func bytes(_ buffer: UnsafeRawBufferPointer) -> amqp_bytes_t {
        guard buffer.count > 0, let base = buffer.baseAddress else { return amqp_empty_bytes }
        let pointer = allocate(byteCount: buffer.count, alignment: 1)
        pointer.copyMemory(from: base, byteCount: buffer.count)
        return amqp_bytes_t(len: buffer.count, bytes: pointer)
    }

    /// Copies a string as a NUL-terminated C string.
    func cString(_ string: String) -> UnsafePointer<CChar> {
        let utf8 = Array(string.utf8)
        let pointer = allocate(byteCount: utf8.count + 1, alignment: 1)
        utf8.withUnsafeBytes { pointer.copyMemory(from: $0.baseAddress!, byteCount: utf8.count) }
        pointer.storeBytes(of: 0, toByteOffset: utf8.count, as: UInt8.self)
        return UnsafePointer(pointer.assumingMemoryBound(to: CChar.self))
    }

    func table(_ table: AMQPTable) -> amqp_table_t {
        guard !table.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = allocate(amqp_table_entry_t.self, count: table.count)
        var index = 0
        for (key, value) in table {
            entries[index] = amqp_table_entry_t(key: bytes(key), value: field(value))
            index += 1
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var field = amqp_field_value_t()
        switch value {
        case .string(let string):
            field.kind = FieldKind.utf8
            field.value.bytes = bytes(string)
        case .bool(let bool):
            field.kind = FieldKind.boolean
            field.value.boolean = bool ? 1 : 0
        case .int32(let int):
            field.kind = FieldKind.i32
            field.value.i32 = int
        case .int64(let int):
            field.kind = FieldKind.i64
            field.value.i64 = int
        case .double(let double):
            field.kind = FieldKind.f64
            field.value.f64 = double
        case .timestamp(let seconds):
            field.kind = FieldKind.timestamp
            field.value.u64 = seconds
        case .table(let nested):
            field.kind = FieldKind.table
            field.value.table = table(nested)
        case .array(let values):
            field.kind = FieldKind.array
            let entries = allocate(amqp_field_value_t.self, count: values.count)
            for (index, element) in values.enumerated() {
                entries[index] = self.field(element)
            }
            field.value.array = amqp_array_t(num_entries: Int32(values.count), entries: values.isEmpty ? nil : entries)
        case .bytes(let raw):
            field.kind = FieldKind.bytes
            field.value.bytes = raw.withUnsafeBytes { bytes($0) }
        case .void:
            field.kind = FieldKind.void
        }
        return field
    }
}

/// AMQP field kind codes (the `amqp_field_value_kind_t` characters).
enum FieldKind {
    static let boolean = UInt8(ascii: "t")
    static let i8 = UInt8(ascii: "b")
    static let u8 = UInt8(ascii: "B")
    static let i16 = UInt8(ascii: "s")
    static let u16 = UInt8(ascii: "u")
    static let i32 = UInt8(ascii: "I")
    static let u32 = UInt8(ascii: "i")
    static let i64 = UInt8(ascii: "l")
    static let u64 = UInt8(ascii: "L")
    static let f32 = UInt8(ascii: "f")
    static let f64 = UInt8(ascii: "d")
    static let decimal = UInt8(ascii: "D")
    static let utf8 = UInt8(ascii: "S")
    static let array = UInt8(ascii: "A")
    static let timestamp = UInt8(ascii: "T")
    static let table = UInt8(ascii: "F")
    static let void = UInt8(ascii: "V")
    static let bytes = UInt8(ascii: "x")
}

/// Copies values out of rabbitmq-c's memory into Swift values.
enum CDecode {
    static func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let pointer = bytes.bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: bytes.len), as: UTF8.self)
    }

    static func byteArray(_ bytes: amqp_bytes_t) -> [UInt8] {
        guard bytes.len > 0, let pointer = bytes.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: bytes.len))
    }

    static func data(_ bytes: amqp_bytes_t) -> Data {
        guard bytes.len > 0, let pointer = bytes.bytes else { return Data() }
        return Data(bytes: pointer, count: bytes.len)
    }

    static func table(_ table: amqp_table_t) -> AMQPTable {
        var result: AMQPTable = [:]
        guard table.num_entries > 0, let entries = table.entries else { return result }
        result.reserveCapacity(Int(table.num_entries))
        for index in 0..<Int(table.num_entries) {
            result[string(entries[index].key)] = field(entries[index].value)
        }
        return result
    }

    static func field(_ field: amqp_field_value_t) -> AMQPFieldValue {
        switch field.kind {
        case FieldKind.boolean: return .bool(field.value.boolean != 0)
        case FieldKind.i8: return .int32(Int32(field.value.i8))
        case FieldKind.u8: return .int32(Int32(field.value.u8))
        case FieldKind.i16: return .int32(Int32(field.value.i16))
        case FieldKind.u16: return .int32(Int32(field.value.u16))
        case FieldKind.i32: return .int32(field.value.i32)
        case FieldKind.u32: return .int64(Int64(field.value.u32))
        case FieldKind.i64: return .int64(field.value.i64)
        case FieldKind.u64: return .int64(Int64(bitPattern: field.value.u64))
        case FieldKind.f32: return .double(Double(field.value.f32))
        case FieldKind.f64: return .double(field.value.f64)
        case FieldKind.decimal:
            let decimal = field.value.decimal
            var value = Double(decimal.value)
            for _ in 0..<decimal.decimals { value /= 10 }
            return .double(value)
        case FieldKind.utf8: return .string(string(field.value.bytes))
        case FieldKind.bytes: return .bytes(byteArray(field.value.bytes))
        case FieldKind.timestamp: return .timestamp(field.value.u64)
        case FieldKind.table: return .table(table(field.value.table))
        case FieldKind.array:
            let array = field.value.array
            guard array.num_entries > 0, let entries = array.entries else { return .array([]) }
            return .array((0..<Int(array.num_entries)).map { self.field(entries[$0]) })
        default: return .void
        }
    }
}
