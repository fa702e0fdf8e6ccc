public import EventSourcery
public import Foundation
import GRDB

/// The command outbox: commands (and deadlines) written by ``WriteBatch/send(_:to:id:metadata:at:)``
/// in the same transaction as the batch's events, handed to the relay in due order.
extension SQLiteEventStorage {
    private static let commandColumns = """
        command_id, target, type_name, schema_version, created_at, correlation_id, causation_id, trace_context, payload, due_at, \
        state, attempts, last_error, next_attempt_at
        """

    /// Inserts the batch's commands and cancels the pending ones it cancels.
    static func writeCommands(_ batch: WriteBatch, in db: Database) throws {
        if !batch.commands.isEmpty {
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO command_outbox (command_id, target, type_name, schema_version, created_at, correlation_id,
                                                causation_id, trace_context, payload, due_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for command in batch.commands {
                do {
                    try insert.execute(arguments: [
                        command.id, command.target, command.typeName, command.schemaVersion, command.createdAt.storedSeconds,
                        command.metadata.correlationID, command.metadata.causationID,
                        traceContextJSON(command.metadata.traceContext), command.payload,
                        command.dueAt.storedSeconds,
                    ])
                } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                    throw EventStoreError.duplicateCommand(command.id)
                }
            }
        }
        let cancel = try db.cachedStatement(sql: "UPDATE command_outbox SET state = 'cancelled' WHERE command_id = ? AND state = 'pending'")
        for id in batch.cancelledCommands {
            try cancel.execute(arguments: [id])
        }
    }

    public func claimCommands(limit: Int, now: Date, leaseDuration: TimeInterval) async throws -> [CommandOutboxEntry] {
        guard limit > 0 else { return [] }
        markOutboxClaim()
        let query = """
            SELECT \(Self.commandColumns) FROM command_outbox INDEXED BY command_outbox_due
            WHERE state = 'pending' AND due_at <= ?1
              AND (next_attempt_at IS NULL OR next_attempt_at <= ?1) AND (leased_until IS NULL OR leased_until <= ?1)
            ORDER BY due_at, seq LIMIT ?2
            """
        let arguments: StatementArguments = [now.storedSeconds, limit]
        guard leaseDuration > 0 else {
            return try await read { db in try Self.fetchCommands(db.cachedStatement(sql: query), arguments: arguments) }
        }
        let leasedUntil = now.addingTimeInterval(leaseDuration).storedSeconds
        return try await write(bookkeeping: true) { db in
            let entries = try Self.fetchCommands(db.cachedStatement(sql: query), arguments: arguments)
            let lease = try db.cachedStatement(sql: "UPDATE command_outbox SET leased_until = ? WHERE command_id = ?")
            for entry in entries {
                try lease.execute(arguments: [leasedUntil, entry.command.id])
            }
            return entries
        }
    }

    public func markCommandsSent(_ commandIDs: [UUID], at date: Date) async throws {
        guard !commandIDs.isEmpty else { return }
        try await write(bookkeeping: true) { db in
            let statement = try db.cachedStatement(
                sql: "UPDATE command_outbox SET state = 'sent', sent_at = ?, leased_until = NULL WHERE command_id = ? AND state = 'pending'"
            )
            for id in commandIDs {
                try statement.execute(arguments: [date.storedSeconds, id])
            }
        }
    }

    public func recordFailedCommandAttempt(
        _ commandID: UUID, error: String, nextAttemptAt: Date, attemptLimit: Int
    ) async throws
        -> CommandOutboxEntry?
    {
        try await write(bookkeeping: true) { db in
            // `attempts` on the right-hand side is the value before the update.
            try db.cachedStatement(
                sql: """
                    UPDATE command_outbox
                    SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, leased_until = NULL,
                        state = CASE WHEN attempts + 1 >= ? THEN 'parked' ELSE 'pending' END
                    WHERE command_id = ? AND state = 'pending'
                    """
            )
            .execute(arguments: [error, nextAttemptAt.storedSeconds, attemptLimit, commandID])
            guard db.changesCount > 0 else { return nil }
            return try Self.fetchCommands(
                db.cachedStatement(sql: "SELECT \(Self.commandColumns) FROM command_outbox WHERE command_id = ?"), arguments: [commandID]
            ).first
        }
    }

    public func requeueParkedCommands(_ commandIDs: [UUID]) async throws -> Int {
        guard !commandIDs.isEmpty else { return 0 }
        let count = try await write { db in
            let statement = try db.cachedStatement(
                sql: """
                    UPDATE command_outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL, leased_until = NULL
                    WHERE command_id = ? AND state = 'parked'
                    """)
            var count = 0
            for id in commandIDs {
                try statement.execute(arguments: [id])
                count += db.changesCount
            }
            return count
        }
        if count > 0 { outboxChanged.signal() }
        return count
    }

    public func commandOutboxEntries(in states: Set<CommandOutboxEntry.State>, limit: Int) async throws -> [CommandOutboxEntry] {
        guard limit > 0, !states.isEmpty else { return [] }
        let placeholders = Array(repeating: "?", count: states.count).joined(separator: ",")
        let arguments = StatementArguments(states.map(\.rawValue)) + [limit]
        return try await read { db in
            try Self.fetchCommands(
                db.makeStatement(
                    sql: "SELECT \(Self.commandColumns) FROM command_outbox WHERE state IN (\(placeholders)) ORDER BY due_at, seq LIMIT ?"),
                arguments: arguments)
        }
    }

    private static func fetchCommands(_ statement: Statement, arguments: StatementArguments) throws -> [CommandOutboxEntry] {
        var traceDecoder: JSONDecoder?
        var entries: [CommandOutboxEntry] = []
        let rows = try Row.fetchCursor(statement, arguments: arguments)
        while let row = try rows.next() {
            var traceContext: [String: String] = [:]
            if let json = try row.decode(String?.self, atIndex: 7) {
                let decoder = traceDecoder ?? JSONDecoder()
                traceDecoder = decoder
                traceContext = try decoder.decode([String: String].self, from: Data(json.utf8))
            }
            let stateName = try row.decode(String.self, atIndex: 10)
            guard let state = CommandOutboxEntry.State(rawValue: stateName) else {
                throw EventStoreError(.storageFailure, message: "The command outbox holds the unknown state '\(stateName)'.")
            }
            let command = EncodedCommand(
                id: try row.decode(UUID.self, atIndex: 0),
                typeName: try row.decode(String.self, atIndex: 2),
                schemaVersion: try row.decode(Int.self, atIndex: 3),
                createdAt: Date(timeIntervalSinceReferenceDate: try row.decode(Double.self, atIndex: 4)),
                metadata: EventMetadata(
                    correlationID: try row.decode(UUID?.self, atIndex: 5), causationID: try row.decode(UUID?.self, atIndex: 6),
                    traceContext: traceContext),
                payload: try row.decode(Data.self, atIndex: 8),
                target: try row.decode(String.self, atIndex: 1),
                dueAt: Date(timeIntervalSinceReferenceDate: try row.decode(Double.self, atIndex: 9))
            )
            entries.append(
                CommandOutboxEntry(
                    command: command, state: state, attempts: try row.decode(Int.self, atIndex: 11),
                    lastError: try row.decode(String?.self, atIndex: 12),
                    nextAttemptAt: try row.decode(Double?.self, atIndex: 13).map(Date.init(timeIntervalSinceReferenceDate:))))
        }
        return entries
    }
}
