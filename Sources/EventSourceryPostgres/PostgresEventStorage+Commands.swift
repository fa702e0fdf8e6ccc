public import EventSourcery
public import Foundation
import Logging
import PostgresNIO

/// The command outbox: commands (and deadlines) written by ``WriteBatch/send(_:to:id:metadata:at:)``
/// in the same transaction as the batch's events, handed to the relay in due order.
extension PostgresEventStorage {
    private static let commandColumns = """
        command_id, target, type_name, schema_version, created_at, correlation_id, causation_id, trace_context, payload, due_at,
        state, attempts, last_error, next_attempt_at
        """

    /// ``commandColumns`` qualified with the alias `c`.
    private static let qualifiedCommandColumns = commandColumns.split(separator: ",").map {
        "c." + $0.trimmingCharacters(in: .whitespacesAndNewlines)
    }.joined(separator: ", ")

    private typealias CommandColumns = (
        UUID, String, String, Int32, Date, UUID?, UUID?, String, String, Date, String, Int32, String?, Date?
    )

    /// Inserts the batch's commands and cancels the pending ones it cancels, inside the
    /// batch's transaction; when `notifying`, notifies the relays when it added commands.
    func writeCommands(_ batch: WriteBatch, on connection: PostgresConnection, notifying: Bool) async throws {
        let schema = self.schema
        let logger = self.logger
        if !batch.commands.isEmpty {
            let ids = batch.commands.map(\.id)
            var seen: Set<UUID> = []
            for id in ids where !seen.insert(id).inserted { throw EventStoreError.duplicateCommand(id) }
            for try await existing in try await connection.query(
                "SELECT command_id FROM \(unescaped: schema).command_outbox WHERE command_id = ANY(\(ids)::uuid[]) LIMIT 1", logger: logger
            ).decode(UUID.self) {
                throw EventStoreError.duplicateCommand(existing)
            }
            for command in batch.commands {
                let trace = TraceContextJSON.encode(command.metadata.traceContext)
                try await connection.query(
                    """
                    INSERT INTO \(unescaped: schema).command_outbox (command_id, target, type_name, schema_version, created_at,
                        correlation_id, causation_id, trace_context, payload, due_at)
                    VALUES (\(command.id), \(command.target), \(command.typeName), \(Int32(clamping: command.schemaVersion)),
                        \(command.createdAt), \(command.metadata.correlationID), \(command.metadata.causationID), \(trace),
                        \(String(decoding: command.payload, as: UTF8.self)), \(command.dueAt))
                    """,
                    logger: logger)
            }
            if notifying {
                try await connection.query(
                    "SELECT pg_notify(\(configuration.notificationChannel), \(configuration.schema))", logger: logger)
            }
        }
        if !batch.cancelledCommands.isEmpty {
            try await connection.query(
                """
                UPDATE \(unescaped: schema).command_outbox SET state = 'cancelled'
                WHERE command_id = ANY(\(batch.cancelledCommands)::uuid[]) AND state = 'pending'
                """,
                logger: logger)
        }
    }

    public func claimCommands(limit: Int, now: Date, leaseDuration: TimeInterval) async throws -> [CommandOutboxEntry] {
        guard limit > 0 else { return [] }
        let schema = self.schema
        guard leaseDuration > 0 else {
            return try await commandQuery(
                """
                SELECT \(unescaped: Self.commandColumns) FROM \(unescaped: schema).command_outbox
                WHERE state = 'pending' AND due_at <= \(now) AND (next_attempt_at IS NULL OR next_attempt_at <= \(now))
                    AND (leased_until IS NULL OR leased_until <= \(now))
                ORDER BY due_at, seq LIMIT \(Int64(limit))
                """,
                "list due commands")
        }
        // One statement: the due rows are locked (skipping rows another claimer holds) and
        // leased together.
        return try await commandQuery(
            """
            WITH due AS (
                SELECT seq FROM \(unescaped: schema).command_outbox
                WHERE state = 'pending' AND due_at <= \(now) AND (next_attempt_at IS NULL OR next_attempt_at <= \(now))
                    AND (leased_until IS NULL OR leased_until <= \(now))
                ORDER BY due_at, seq LIMIT \(Int64(limit))
                FOR UPDATE SKIP LOCKED
            ), leased AS (
                UPDATE \(unescaped: schema).command_outbox c SET leased_until = \(now.addingTimeInterval(leaseDuration))
                FROM due WHERE c.seq = due.seq
                RETURNING c.seq, \(unescaped: Self.qualifiedCommandColumns)
            )
            SELECT \(unescaped: Self.commandColumns) FROM leased ORDER BY due_at, seq
            """,
            "claim commands")
    }

    public func markCommandsSent(_ commandIDs: [UUID], at date: Date) async throws {
        guard !commandIDs.isEmpty else { return }
        _ = try await rows(
            """
            UPDATE \(unescaped: schema).command_outbox SET state = 'sent', sent_at = \(date), leased_until = NULL
            WHERE command_id = ANY(\(commandIDs)::uuid[]) AND state = 'pending'
            """,
            "mark commands sent")
    }

    public func recordFailedCommandAttempt(
        _ commandID: UUID, error: String, nextAttemptAt: Date, attemptLimit: Int
    ) async throws
        -> CommandOutboxEntry?
    {
        try await commandQuery(
            """
            UPDATE \(unescaped: schema).command_outbox
            SET attempts = attempts + 1, last_error = \(error), next_attempt_at = \(nextAttemptAt), leased_until = NULL,
                state = CASE WHEN attempts + 1 >= \(Int64(attemptLimit)) THEN 'parked' ELSE 'pending' END
            WHERE command_id = \(commandID) AND state = 'pending'
            RETURNING \(unescaped: Self.commandColumns)
            """,
            "record a failed command attempt"
        ).first
    }

    public func requeueParkedCommands(_ commandIDs: [UUID]) async throws -> Int {
        guard !commandIDs.isEmpty else { return 0 }
        return try await count(
            """
            WITH requeued AS (
                UPDATE \(unescaped: schema).command_outbox
                SET state = 'pending', attempts = 0, next_attempt_at = NULL, leased_until = NULL
                WHERE command_id = ANY(\(commandIDs)::uuid[]) AND state = 'parked'
                RETURNING 1
            )
            SELECT count(*), pg_notify(\(configuration.notificationChannel), \(configuration.schema)) FROM requeued
            """,
            "requeue parked commands")
    }

    public func commandOutboxEntries(in states: Set<CommandOutboxEntry.State>, limit: Int) async throws -> [CommandOutboxEntry] {
        guard limit > 0, !states.isEmpty else { return [] }
        return try await commandQuery(
            """
            SELECT \(unescaped: Self.commandColumns) FROM \(unescaped: schema).command_outbox
            WHERE state = ANY(\(states.map(\.rawValue))::text[]) ORDER BY due_at, seq LIMIT \(Int64(limit))
            """,
            "list commands")
    }

    private func commandQuery(_ query: PostgresQuery, _ operation: String) async throws -> [CommandOutboxEntry] {
        do {
            var entries: [CommandOutboxEntry] = []
            for try await columns in try await runningClient().query(query, logger: logger).decode(CommandColumns.self) {
                entries.append(try Self.commandEntry(columns))
            }
            return entries
        } catch {
            throw failure(error, operation: operation)
        }
    }

    private static func commandEntry(_ columns: CommandColumns) throws -> CommandOutboxEntry {
        let (
            id, target, typeName, schemaVersion, createdAt, correlationID, causationID, trace, payload, dueAt, stateName, attempts,
            lastError, nextAttemptAt
        ) = columns
        guard let state = CommandOutboxEntry.State(rawValue: stateName),
            let traceContext = try? JSONDecoder().decode([String: String].self, from: Data(trace.utf8))
        else {
            throw EventStoreError(.storageFailure, message: "The command outbox row of command \(id) is not one this library wrote.")
        }
        let command = EncodedCommand(
            id: id, typeName: typeName, schemaVersion: Int(schemaVersion), createdAt: createdAt,
            metadata: EventMetadata(correlationID: correlationID, causationID: causationID, traceContext: traceContext),
            payload: Data(payload.utf8), target: target, dueAt: dueAt)
        return CommandOutboxEntry(
            command: command, state: state, attempts: Int(attempts), lastError: lastError, nextAttemptAt: nextAttemptAt)
    }
}
