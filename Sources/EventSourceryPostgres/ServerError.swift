import PostgresNIO

/// The fields of an error the PostgreSQL server reported that the storage maps.
struct ServerError {
    var state: String
    var message: String
    var detail: String?
    var constraint: String?

    init(state: String, message: String, detail: String? = nil, constraint: String? = nil) {
        (self.state, self.message, self.detail, self.constraint) = (state, message, detail, constraint)
    }

    /// The server error in `error` (also inside a `PostgresTransactionError`), if it is one.
    init?(_ error: any Error) {
        if let transaction = error as? PostgresTransactionError, let inner = transaction.closureError ?? transaction.commitError {
            self.init(inner)
            return
        }
        guard let psql = error as? PSQLError, psql.code == .server, let info = psql.serverInfo else { return nil }
        self.init(
            state: info[.sqlState] ?? "?????", message: info[.message] ?? "no message", detail: info[.detail],
            constraint: info[.constraintName])
    }
}
