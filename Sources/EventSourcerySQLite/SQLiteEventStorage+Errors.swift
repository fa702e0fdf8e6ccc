import EventSourcery
import Foundation
import GRDB

/// Turning SQLite's errors into ``EventStoreError``s that say what to do.
extension SQLiteEventStorage {
    /// The error thrown when the storage is used after ``close()``.
    static func closedError(path: String) -> EventStoreError {
        EventStoreError(
            .storageUnavailable,
            message:
                "The SQLite event storage at '\(path)' is closed: storage is closed. Open a new SQLiteEventStorage to use the database again."
        )
    }

    /// Maps an error raised while opening the database at `path`.
    static func openError(_ error: any Error, path: String, configuration: Configuration) -> any Error {
        if error is EventStoreError { return error }
        guard let error = error as? DatabaseError else {
            return EventStoreError(
                .storageUnavailable, message: "The SQLite database at '\(path)' cannot be opened: \(error).", underlying: error)
        }
        switch error.resultCode {
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return EventStoreError(
                .storageUnavailable, message: cannotOpenMessage(path: path, sqliteMessage: error.message), underlying: error)
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return EventStoreError(
                .storageUnavailable,
                message:
                    "The file '\(path)' is not an SQLite database or is corrupted (SQLite: \(error.message ?? "file is not a database")). "
                    + "Check that the path names the event store's database, or restore it from a backup.",
                underlying: error
            )
        default:
            return mapped(error, path: path, configuration: configuration)
        }
    }

    /// Maps an error raised by a database access. `EventStoreError`s and cancellation pass
    /// through unchanged.
    static func mapped(_ error: any Error, path: String, configuration: Configuration?) -> any Error {
        if error is EventStoreError || error is CancellationError { return error }
        guard let error = error as? DatabaseError else {
            return EventStoreError(.storageFailure, message: "The SQLite event storage at '\(path)' failed: \(error).", underlying: error)
        }
        let sqliteMessage = error.message ?? "\(error.resultCode)"
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            let waited = configuration.map { " after waiting \($0.busyTimeout)" } ?? ""
            return EventStoreError(
                .storageUnavailable,
                message: "The database is locked by another process or connection (SQLite: \(sqliteMessage)); "
                    + "the access to '\(path)' gave up\(waited) and wrote nothing. "
                    + "Retry later, stop the other process holding a transaction open, or raise Configuration.busyTimeout.",
                underlying: error
            )
        case .SQLITE_MISUSE where sqliteMessage.localizedCaseInsensitiveContains("closed"):
            return closedError(path: path)
        case .SQLITE_READONLY:
            return EventStoreError(
                .storageUnavailable,
                message: "The database at '\(path)' is read-only (SQLite: \(sqliteMessage)). "
                    + "Open it without Configuration.isReadOnly, and check that the file and its directory are writable.",
                underlying: error
            )
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH:
            return EventStoreError(
                .storageUnavailable, message: cannotOpenMessage(path: path, sqliteMessage: sqliteMessage), underlying: error)
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return EventStoreError(
                .storageUnavailable,
                message: "The database at '\(path)' is corrupted (SQLite: \(sqliteMessage)). Restore it from a backup.",
                underlying: error
            )
        case .SQLITE_FULL:
            return EventStoreError(
                .storageFailure,
                message: "The disk holding '\(path)' is full (SQLite: \(sqliteMessage)); nothing was written. Free some space and retry.",
                underlying: error
            )
        default:
            return EventStoreError(
                .storageFailure,
                message: "SQLite failed on '\(path)': \(sqliteMessage). Nothing of the failed transaction was written.",
                underlying: error
            )
        }
    }

    private static func cannotOpenMessage(path: String, sqliteMessage: String?) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        let reason: String
        if !directory.isEmpty, !fileManager.fileExists(atPath: directory, isDirectory: &isDirectory) {
            reason = "its directory '\(directory)' does not exist. Create the directory first"
        } else if !directory.isEmpty, !isDirectory.boolValue {
            reason = "'\(directory)' is not a directory. Check the path"
        } else if fileManager.fileExists(atPath: path), !fileManager.isWritableFile(atPath: path) {
            reason = "the file is not writable by this process. Fix its permissions, or open it with Configuration.isReadOnly"
        } else {
            reason =
                "check that the path is right and that this process may create and write files in '\(directory.isEmpty ? "." : directory)'"
        }
        return "The SQLite database at '\(path)' cannot be opened (SQLite: \(sqliteMessage ?? "unable to open database file")): \(reason)."
    }
}
