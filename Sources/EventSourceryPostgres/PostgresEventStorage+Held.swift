public import EventSourcery
import Foundation
import PostgresNIO

/// Held events: a consumer's per-source-stream sequences of events waiting for a retry of
/// their head (see ``HeldEvent``).
extension PostgresEventStorage {
    /// The columns of a held event: first in the layout of ``eventColumns`` (the sequence
    /// number standing for the position, the source stream for the stream), so
    /// ``recordedEvent(_:)`` decodes them, then the sequence and retry columns.
    private static let heldColumns = """
        sequence_number, source_stream, stream_version, event_id, type_name, schema_version, created_at,
        correlation_id, causation_id, trace_context, payload, consumer, source_context, attempts, last_error,
        next_attempt_at, state
        """

    private typealias HeldColumns = (
        Int64, String, Int64, UUID, String, Int32, Date, UUID?, UUID?, String, String,
        String, String, Int32, String?, Date, String
    )

    /// Holds the event in one statement: the insert runs only when the sequence has events
    /// (or need not have any), the unique (consumer, event id) constraint drops a second
    /// copy, and the outer query tells an event that was held before from an empty sequence.
    public func holdEvent(_ event: HeldEvent, onlyBehindOthers: Bool) async throws -> HoldOutcome {
        let sequence = event.sequence
        let encoded = event.event
        let trace = TraceContextJSON.encode(encoded.metadata.traceContext)
        let operation = "hold an event"
        let rows = try await rows(
            """
            WITH inserted AS (
                INSERT INTO \(unescaped: schema).held_events (consumer, source_context, source_stream, stream_version, event_id,
                    type_name, schema_version, created_at, correlation_id, causation_id, trace_context, payload, attempts,
                    last_error, next_attempt_at, state)
                SELECT \(sequence.consumer), \(sequence.sourceContext), \(sequence.sourceStream.rawValue), \(event.streamVersion),
                    \(encoded.id), \(encoded.typeName), \(Int32(clamping: encoded.schemaVersion)), \(encoded.createdAt),
                    \(encoded.metadata.correlationID), \(encoded.metadata.causationID), \(trace),
                    \(String(decoding: encoded.payload, as: UTF8.self)), \(Int32(clamping: event.attempts)), \(event.lastError),
                    \(event.nextAttemptAt), \(event.state.rawValue)
                WHERE NOT \(onlyBehindOthers) OR EXISTS (
                    SELECT 1 FROM \(unescaped: schema).held_events
                    WHERE consumer = \(sequence.consumer) AND source_context = \(sequence.sourceContext)
                        AND source_stream = \(sequence.sourceStream.rawValue))
                ON CONFLICT (consumer, event_id) DO NOTHING
                RETURNING sequence_number
            )
            SELECT (SELECT sequence_number FROM inserted), EXISTS (
                SELECT 1 FROM \(unescaped: schema).held_events WHERE consumer = \(sequence.consumer) AND event_id = \(encoded.id))
            """,
            operation
        )
        do {
            let (number, existed) = try rows[0].decode((Int64?, Bool).self)
            if let number { return .held(number) }
            return existed ? .alreadyHeld : .notHeld
        } catch {
            throw failure(error, operation: operation)
        }
    }

    public func heldEvents(consumer: String, sequence: HeldEvent.Sequence?) async throws -> [HeldEvent] {
        let query: PostgresQuery =
            if let sequence {
                """
                SELECT \(unescaped: Self.heldColumns) FROM \(unescaped: schema).held_events
                WHERE consumer = \(consumer) AND source_context = \(sequence.sourceContext)
                    AND source_stream = \(sequence.sourceStream.rawValue)
                ORDER BY sequence_number
                """
            } else {
                """
                SELECT \(unescaped: Self.heldColumns) FROM \(unescaped: schema).held_events
                WHERE consumer = \(consumer) ORDER BY sequence_number
                """
            }
        let operation = "read held events"
        do {
            var events: [HeldEvent] = []
            for try await columns in try await runningClient().query(query, logger: logger).decode(HeldColumns.self) {
                let recorded = try Self.recordedEvent(
                    (
                        columns.0, columns.1, columns.2, columns.3, columns.4, columns.5, columns.6, columns.7, columns.8, columns.9,
                        columns.10
                    )
                )
                guard let state = HeldEvent.State(rawValue: columns.16) else {
                    throw EventStoreError(.storageFailure, message: "The held event \(columns.0) has an unknown state '\(columns.16)'.")
                }
                events.append(
                    HeldEvent(
                        sequenceNumber: columns.0,
                        sequence: HeldEvent.Sequence(consumer: columns.11, sourceContext: columns.12, sourceStream: recorded.streamID),
                        streamVersion: recorded.streamVersion, event: recorded.event, attempts: Int(columns.13), lastError: columns.14,
                        nextAttemptAt: columns.15, state: state
                    ))
            }
            return events
        } catch {
            throw failure(error, operation: operation)
        }
    }

    public func updateHeldEvent(_ event: HeldEvent) async throws -> Bool {
        let rows = try await rows(
            """
            UPDATE \(unescaped: schema).held_events
            SET attempts = \(Int32(clamping: event.attempts)), last_error = \(event.lastError),
                next_attempt_at = \(event.nextAttemptAt), state = \(event.state.rawValue)
            WHERE sequence_number = \(event.sequenceNumber)
            RETURNING 1
            """,
            "update a held event"
        )
        return !rows.isEmpty
    }

    public func releaseHeldEvent(sequenceNumber: Int64) async throws -> Bool {
        let rows = try await rows(
            "DELETE FROM \(unescaped: schema).held_events WHERE sequence_number = \(sequenceNumber) RETURNING 1", "release a held event"
        )
        return !rows.isEmpty
    }
}
