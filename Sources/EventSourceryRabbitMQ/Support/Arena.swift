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
