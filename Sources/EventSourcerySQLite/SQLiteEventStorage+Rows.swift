import EventSourcery
import Foundation
import GRDB

/// Converting between stored rows and the core's value types.
extension SQLiteEventStorage {
    /// The columns of `events` that make a ``RecordedEvent``, in the order
    /// ``recordedEvent(from:at:traceDecoder:)`` reads them.
    static let eventColumns = """
        position, stream_id, stream_version, event_id, type_name, schema_version, \
        created_at, correlation_id, causation_id, trace_context, payload
        """

    /// The `eventColumns` qualified with a table alias, for joins.
    static func eventColumns(alias: String) -> String {
        eventColumns.split(separator: ",").map { "\(alias).\($0.trimmingCharacters(in: .whitespaces))" }.joined(separator: ", ")
    }

    static let eventColumnCount = 11

    /// Decodes the event whose columns start at `offset` in `row`.
    static func recordedEvent(from row: Row, at offset: Int = 0, traceDecoder: inout JSONDecoder?) throws -> RecordedEvent {
        let streamName = try row.decode(String.self, atIndex: offset + 1)
        let stream: StreamID
        do {
            stream = try StreamID(streamName)
        } catch {
            throw EventStoreError(
                .storageFailure,
                message: "The stored stream id '\(streamName.prefix(40))' is invalid; the database was changed outside EventSourcery.",
                underlying: error
            )
        }
        var traceContext: [String: String] = [:]
        if let json = try row.decode(String?.self, atIndex: offset + 9) {
            let decoder = traceDecoder ?? JSONDecoder()
            traceDecoder = decoder
            traceContext = try decoder.decode([String: String].self, from: Data(json.utf8))
        }
        let event = EncodedEvent(
            id: try row.decode(UUID.self, atIndex: offset + 3),
            typeName: try row.decode(String.self, atIndex: offset + 4),
            schemaVersion: try row.decode(Int.self, atIndex: offset + 5),
            createdAt: Date(timeIntervalSinceReferenceDate: try row.decode(Double.self, atIndex: offset + 6)),
            metadata: EventMetadata(
                correlationID: try row.decode(UUID?.self, atIndex: offset + 7),
                causationID: try row.decode(UUID?.self, atIndex: offset + 8),
                traceContext: traceContext
            ),
            payload: try row.decode(Data.self, atIndex: offset + 10)
        )
        return RecordedEvent(
            streamID: stream,
            streamVersion: try row.decode(Int64.self, atIndex: offset + 2),
            position: try row.decode(Int64.self, atIndex: offset),
            event: event
        )
    }

    /// Fetches the recorded events a statement selects with ``eventColumns`` first.
    static func fetchRecordedEvents(_ statement: Statement, arguments: StatementArguments) throws -> [RecordedEvent] {
        var traceDecoder: JSONDecoder?
        var events: [RecordedEvent] = []
        let rows = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try rows.next() {
            events.append(try recordedEvent(from: row, traceDecoder: &traceDecoder))
        }
        return events
    }

    /// The stored form of a trace context: `NULL` when empty (the common case, which
    /// then costs nothing to read), else a JSON object with sorted keys.
    static func traceContextJSON(_ traceContext: [String: String]) -> String? {
        traceContext.isEmpty ? nil : TraceContextJSON.encode(traceContext)
    }
}

extension Date {
    /// The stored form of a date: seconds since the reference date, which round-trips exactly.
    var storedSeconds: Double { timeIntervalSinceReferenceDate }
}
