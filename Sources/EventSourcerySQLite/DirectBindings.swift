import Foundation
import GRDB
import GRDBSQLite

/// The parameters of one run of a statement, bound straight through SQLite's C API in
/// order, with the storage classes GRDB gives the same Swift values (a UUID is a 16-byte
/// blob, a `Data` a blob, a `nil` NULL).
///
/// GRDB's `StatementArguments` boxes every value in an existential and turns each UUID into
/// a `Data` on the way; the commit path binds four to ten values per event, so it binds them
/// here without either. Strings and blobs are copied by SQLite (`SQLITE_TRANSIENT`), as
/// GRDB's `setArguments` does.
struct DirectBindings: ~Copyable {
    private let statement: OpaquePointer
    private var index: CInt = 1
    /// The first result code other than `SQLITE_OK` a bind returned (a misuse: too many
    /// values, out of memory).
    fileprivate private(set) var failure: CInt?

    fileprivate init(_ statement: OpaquePointer) {
        self.statement = statement
    }

    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    mutating func bind(_ value: Int64) {
        check(sqlite3_bind_int64(statement, next(), value))
    }

    mutating func bind(_ value: Int) {
        bind(Int64(value))
    }

    mutating func bind(_ value: Double) {
        check(sqlite3_bind_double(statement, next(), value))
    }

    mutating func bind(_ value: String) {
        check(sqlite3_bind_text(statement, next(), value, -1, Self.transient))
    }

    mutating func bind(_ value: String?) {
        if let value { bind(value) } else { bindNull() }
    }

    mutating func bind(_ value: UUID) {
        let position = next()
        check(withUnsafeBytes(of: value.uuid) { sqlite3_bind_blob(statement, position, $0.baseAddress, CInt($0.count), Self.transient) })
    }

    mutating func bind(_ value: UUID?) {
        if let value { bind(value) } else { bindNull() }
    }

    mutating func bind(_ value: Data) {
        let position = next()
        check(value.withUnsafeBytes { sqlite3_bind_blob(statement, position, $0.baseAddress, CInt($0.count), Self.transient) })
    }

    private mutating func bindNull() {
        check(sqlite3_bind_null(statement, next()))
    }

    private mutating func check(_ code: CInt) {
        if code != SQLITE_OK, failure == nil { failure = code }
    }

    private mutating func next() -> CInt {
        defer { index += 1 }
        return index
    }
}

extension Statement {
    /// Runs the statement once with the parameters `bind` sets, calling `row` for each row
    /// it returns.
    ///
    /// Resets the statement before and after, so neither an earlier failure nor this run
    /// stays attached to it when GRDB uses it next. Skips GRDB's per-statement bookkeeping
    /// (database observation, transaction dates), which the storage does not use; must run on
    /// the connection's queue, in a transaction or access the caller opened through GRDB.
    ///
    /// - Throws: `DatabaseError` with SQLite's result code and message, as GRDB throws it.
    func runDirectly(in db: Database, _ bind: (inout DirectBindings) -> Void, row: (DirectRow) -> Void = { _ in }) throws {
        let statement = sqliteStatement
        sqlite3_reset(statement)
        defer { sqlite3_reset(statement) }
        var bindings = DirectBindings(statement)
        bind(&bindings)
        if let failure = bindings.failure { throw error(failure, in: db) }
        while true {
            switch sqlite3_step(statement) {
            case SQLITE_DONE:
                return
            case SQLITE_ROW:
                row(DirectRow(statement: statement))
            case let code:
                throw error(code, in: db)
            }
        }
    }

    /// The first column of the first row as an integer; `nil` when there is no row or the
    /// value is NULL. See ``runDirectly(in:_:row:)``.
    func fetchInt64Directly(in db: Database, _ bind: (inout DirectBindings) -> Void) throws -> Int64? {
        var value: Int64?
        try runDirectly(in: db, bind) { row in if value == nil { value = row.int64(at: 0) } }
        return value
    }

    private func error(_ code: CInt, in db: Database) -> DatabaseError {
        DatabaseError(
            resultCode: ResultCode(rawValue: code), message: db.sqliteConnection.map { String(cString: sqlite3_errmsg($0)) }, sql: sql)
    }
}

/// A row of a statement run by ``GRDB/Statement/runDirectly(in:_:row:)``, valid only
/// inside its `row` closure.
struct DirectRow {
    fileprivate let statement: OpaquePointer

    /// The column at `index` (0-based) as an integer; `nil` when NULL.
    func int64(at index: CInt) -> Int64? {
        sqlite3_column_type(statement, index) == SQLITE_NULL ? nil : sqlite3_column_int64(statement, index)
    }

    /// The column at `index` as a UUID stored as a 16-byte blob; `nil` for any other value.
    func uuid(at index: CInt) -> UUID? {
        guard sqlite3_column_type(statement, index) == SQLITE_BLOB, sqlite3_column_bytes(statement, index) == 16,
            let bytes = sqlite3_column_blob(statement, index)
        else { return nil }
        return UUID(uuid: bytes.loadUnaligned(as: uuid_t.self))
    }
}

/// The statements every committed batch runs, taken from GRDB's statement cache once per
/// transaction rather than once per batch (each lookup hashes the SQL text).
struct CommitStatements {
    let insertInbox: Statement
    let streamVersion: Statement
    let insertEvent: Statement
    let insertOutbox: Statement

    init(_ db: Database) throws {
        insertInbox = try db.cachedStatement(
            sql: "INSERT INTO inbox (consumer, event_id, processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
        streamVersion = try db.cachedStatement(sql: "SELECT max(stream_version) FROM events WHERE stream_id = ?")
        insertEvent = try db.cachedStatement(
            sql: """
                INSERT INTO events (stream_id, stream_version, event_id, type_name, schema_version,
                                    created_at, correlation_id, causation_id, trace_context, payload)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        insertOutbox = try db.cachedStatement(sql: "INSERT INTO outbox (position, stream_id) VALUES (?, ?)")
    }
}
