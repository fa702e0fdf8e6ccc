public import EventSourcery
import Foundation
import GRDB

/// Held events: a consumer's per-source-stream sequences of events waiting for a retry of
/// their head (see ``HeldEvent``).
extension SQLiteEventStorage {
    /// The columns of a held event: first in the layout of ``eventColumns`` (the sequence
    /// number standing for the position, the source stream for the stream), so
    /// ``recordedEvent(from:at:traceDecoder:)`` reads them, then the sequence and retry columns.
    private static let heldColumns = """
        sequence_number, source_stream, stream_version, event_id, type_name, schema_version, created_at, \
        correlation_id, causation_id, trace_context, payload, consumer, source_context, attempts, last_error, \
        next_attempt_at, state
        """

    public func holdEvent(_ event: HeldEvent, onlyBehindOthers: Bool) async throws -> HoldOutcome {
        try await write { db in
            let sequence = event.sequence
            let alreadyHeld =
                try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM held_events WHERE consumer = ? AND event_id = ?)"),
                    arguments: [sequence.consumer, event.event.id]) ?? false
            if alreadyHeld { return .alreadyHeld }
            if onlyBehindOthers {
                let others =
                    try Bool.fetchOne(
                        db.cachedStatement(
                            sql: """
                                SELECT EXISTS (SELECT 1 FROM held_events WHERE consumer = ? AND source_context = ? AND source_stream = ?)
                                """),
                        arguments: [sequence.consumer, sequence.sourceContext, sequence.sourceStream.rawValue]) ?? false
                if !others { return .notHeld }
            }
            let encoded = event.event
            try db.cachedStatement(
                sql: """
                    INSERT INTO held_events (consumer, source_context, source_stream, stream_version, event_id, type_name,
                        schema_version, created_at, correlation_id, causation_id, trace_context, payload, attempts, last_error,
                        next_attempt_at, state)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """
            )
            .execute(arguments: [
                sequence.consumer, sequence.sourceContext, sequence.sourceStream.rawValue, event.streamVersion, encoded.id,
                encoded.typeName, encoded.schemaVersion, encoded.createdAt.storedSeconds, encoded.metadata.correlationID,
                encoded.metadata.causationID, Self.traceContextJSON(encoded.metadata.traceContext),
                encoded.payload, event.attempts, event.lastError, event.nextAttemptAt.storedSeconds, event.state.rawValue,
            ])
            return .held(db.lastInsertedRowID)
        }
    }

    public func heldEvents(consumer: String, sequence: HeldEvent.Sequence?) async throws -> [HeldEvent] {
        try await read { db in
            let statement: Statement
            let arguments: StatementArguments
            if let sequence {
                statement = try db.cachedStatement(
                    sql: """
                        SELECT \(Self.heldColumns) FROM held_events
                        WHERE consumer = ? AND source_context = ? AND source_stream = ? ORDER BY sequence_number
                        """)
                arguments = [consumer, sequence.sourceContext, sequence.sourceStream.rawValue]
            } else {
                statement = try db.cachedStatement(
                    sql: "SELECT \(Self.heldColumns) FROM held_events WHERE consumer = ? ORDER BY sequence_number")
                arguments = [consumer]
            }
            var traceDecoder: JSONDecoder?
            var events: [HeldEvent] = []
            let rows = try Row.fetchCursor(statement, arguments: arguments)
            while let row = try rows.next() {
                let recorded = try Self.recordedEvent(from: row, traceDecoder: &traceDecoder)
                let stateName = try row.decode(String.self, atIndex: 16)
                guard let state = HeldEvent.State(rawValue: stateName) else {
                    throw EventStoreError(
                        .storageFailure,
                        message: "Held event \(recorded.position) has the unknown state '\(stateName)'; "
                            + "the database was changed outside EventSourcery."
                    )
                }
                events.append(
                    HeldEvent(
                        sequenceNumber: recorded.position,
                        sequence: HeldEvent.Sequence(
                            consumer: try row.decode(String.self, atIndex: 11), sourceContext: try row.decode(String.self, atIndex: 12),
                            sourceStream: recorded.streamID),
                        streamVersion: recorded.streamVersion,
                        event: recorded.event,
                        attempts: try row.decode(Int.self, atIndex: 13),
                        lastError: try row.decode(String?.self, atIndex: 14),
                        nextAttemptAt: Date(timeIntervalSinceReferenceDate: try row.decode(Double.self, atIndex: 15)),
                        state: state
                    ))
            }
            return events
        }
    }

    public func updateHeldEvent(_ event: HeldEvent) async throws -> Bool {
        try await write { db in
            try db.cachedStatement(
                sql: "UPDATE held_events SET attempts = ?, last_error = ?, next_attempt_at = ?, state = ? WHERE sequence_number = ?"
            )
            .execute(arguments: [
                event.attempts, event.lastError, event.nextAttemptAt.storedSeconds, event.state.rawValue, event.sequenceNumber,
            ])
            return db.changesCount > 0
        }
    }

    public func releaseHeldEvent(sequenceNumber: Int64) async throws -> Bool {
        try await write { db in
            try db.cachedStatement(sql: "DELETE FROM held_events WHERE sequence_number = ?").execute(arguments: [sequenceNumber])
            return db.changesCount > 0
        }
    }
}
