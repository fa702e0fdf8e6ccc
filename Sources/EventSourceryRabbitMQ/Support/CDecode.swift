import CRabbitMQ
import Foundation

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
