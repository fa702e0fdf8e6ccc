import NIOConcurrencyHelpers
import EventSourcery
import Foundation
import PostgresNIO

/// SQLSTATE codes the storage reacts to (PostgreSQL's "Appendix A. Error Codes").
enum SQLState {
    static let uniqueViolation = "23505"
    static let invalidPassword = "28P01"
    static let invalidAuthorization = "28000"
    static let invalidCatalogName = "3D000"
    static let serializationFailure = "40001"
    static let deadlockDetected = "40P01"
    static let tooManyConnections = "53300"
    static let adminShutdown = "57P01"
    static let crashShutdown = "57P02"
    static let cannotConnectNow = "57P03"
    static let invalidTextRepresentation = "22P02"
    static let untranslatableCharacter = "22P05"
    static let insufficientPrivilege = "42501"
    /// Raised by `append_events`: an expected version does not hold.
    static let versionConflict = "ES001"
    /// Raised by `append_events`: the transaction is older than one that appended to the
    /// same stream and committed first; a new transaction succeeds.
    static let transactionOrderConflict = "ES002"
}

extension PostgresEventStorage {
    /// Translates any error of postgres-nio (or the network below it) into an
    /// ``EventStoreError`` whose message names the server and says what to check.
    ///
    /// No postgres-nio or NIO type leaves the module: the server's SQLSTATE and message are
    /// copied into the message text instead of attaching the original error.
    static func storeError(_ error: any Error, configuration: Configuration, operation: String) -> any Error {
        if error is EventStoreError || error is CancellationError { return error }
        if let transaction = error as? PostgresTransactionError {
            if let inner = transaction.closureError ?? transaction.commitError ?? transaction.beginError {
                return storeError(inner, configuration: configuration, operation: operation)
            }
        }
        let endpoint = "\(configuration.host):\(configuration.port)"
        let target = "database '\(configuration.database)' on \(endpoint) as '\(configuration.username)'"
        guard let psql = error as? PSQLError else {
            if error is PostgresDecodingError {
                return EventStoreError(
                    .storageFailure,
                    message: "Could not \(operation): a stored value in \(target) has an unexpected type. "
                        + "The schema '\(configuration.schema)' may have been changed by hand or by a newer library version."
                )
            }
            return EventStoreError(.storageFailure, message: "Could not \(operation) in \(target): \(error).")
        }
        switch psql.code {
        case .server:
            return serverError(
                ServerError(psql) ?? ServerError(state: "?????", message: "no message"), configuration: configuration, operation: operation)
        case .connectionError, .serverClosedConnection, .uncleanShutdown:
            return EventStoreError(
                .storageUnavailable,
                message: "Cannot reach PostgreSQL at \(endpoint) (database '\(configuration.database)'): "
                    + "\(psql.underlying.map { "\($0)" } ?? "\(psql.code)"). "
                    + "Check that the server runs and listens on that host and port (listen_addresses, port, firewall)."
            )
        case .sslUnsupported:
            return EventStoreError(
                .storageUnavailable,
                message: "PostgreSQL at \(endpoint) does not offer TLS, but the configuration requires it (sslmode=require). "
                    + "Enable ssl on the server or use sslmode=prefer/disable."
            )
        case .failedToAddSSLHandler, .receivedUnencryptedDataAfterSSLRequest:
            return EventStoreError(
                .storageUnavailable,
                message: "The TLS handshake with PostgreSQL at \(endpoint) failed (\(psql.code)). "
                    + "Check the server's certificate and the sslmode in the connection URL."
            )
        case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            return EventStoreError(
                .storageUnavailable,
                message: "Could not authenticate role '\(configuration.username)' at \(endpoint) (\(psql.code)). "
                    + "Check the password in the connection URL and the server's authentication method (md5 or scram-sha-256)."
            )
        case .clientClosedConnection, .poolClosed:
            return EventStoreError(
                .storageUnavailable,
                message: "Could not \(operation): the storage for \(target) is shut down."
            )
        case .queryCancelled:
            return CancellationError()
        default:
            return EventStoreError(.storageFailure, message: "Could not \(operation) in \(target): \(psql.code).")
        }
    }

    /// Translates `error` like ``storeError(_:configuration:operation:)``, and reports any
    /// failure after ``shutdown()`` as the storage being shut down.
    func failure(_ error: any Error, operation: String) -> any Error {
        if !(error is EventStoreError), lifecycle.withLockedValue({ $0.isShutDown }) {
            return EventStoreError(
                .storageUnavailable,
                message: "Could not \(operation): the PostgreSQL event storage for \(configuration.endpointDescription) is shut down."
            )
        }
        return Self.storeError(error, configuration: configuration, operation: operation)
    }

    /// Translates an error the server reported (SQLSTATE, message, detail) like
    /// ``storeError(_:configuration:operation:)`` does.
    static func serverError(_ error: ServerError, configuration: Configuration, operation: String) -> EventStoreError {
        let endpoint = "\(configuration.host):\(configuration.port)"
        let target = "database '\(configuration.database)' on \(endpoint) as '\(configuration.username)'"
        let server = "SQLSTATE \(error.state): \(error.message)\(error.detail.map { " (\($0))" } ?? "")"
        switch error.state {
        case SQLState.invalidPassword, SQLState.invalidAuthorization:
            return EventStoreError(
                .storageUnavailable,
                message: "PostgreSQL at \(endpoint) rejected the login of role '\(configuration.username)' "
                    + "to database '\(configuration.database)' (\(server)). Check the user name and password in the "
                    + "connection URL, and the server's pg_hba.conf rules for this client address."
            )
        case SQLState.invalidCatalogName:
            return EventStoreError(
                .storageUnavailable,
                message: "The database '\(configuration.database)' does not exist on the PostgreSQL server at \(endpoint) "
                    + "(\(server)). Create it (CREATE DATABASE \(configuration.database) OWNER \(configuration.username)) "
                    + "or fix the database name in the connection URL."
            )
        case SQLState.tooManyConnections, SQLState.adminShutdown, SQLState.crashShutdown, SQLState.cannotConnectNow:
            return EventStoreError(
                .storageUnavailable,
                message: "The PostgreSQL server at \(endpoint) cannot serve \(target) right now (\(server)). "
                    + "Check that it is up and not out of connections (max_connections), then retry."
            )
        case SQLState.serializationFailure, SQLState.deadlockDetected:
            return EventStoreError(
                .storageFailure,
                message: "Could not \(operation): the transaction conflicted with a concurrent one and was rolled back "
                    + "(\(server)). Nothing was written; retrying is safe."
            )
        case SQLState.insufficientPrivilege:
            return EventStoreError(
                .storageFailure,
                message: "Could not \(operation): role '\(configuration.username)' lacks a privilege in schema "
                    + "'\(configuration.schema)' of \(target) (\(server)). Grant it, or let a role that owns the schema migrate it."
            )
        default:
            return EventStoreError(.storageFailure, message: "Could not \(operation) in \(target): \(server).")
        }
    }
}

extension EventStoreError {
    /// The conflict `append_events` reports when the appending transaction is older than one
    /// that appended to the same stream and committed first: the batch is valid, and runs
    /// again in a new transaction.
    var isTransactionOrderConflict: Bool {
        code == .concurrencyConflict && message.hasPrefix(PostgresEventStorage.transactionOrderPrefix)
    }
}

extension PostgresEventStorage {
    static let transactionOrderPrefix = "Another transaction appended to stream"

    static func transactionOrderMessage(stream: StreamID) -> String {
        "\(transactionOrderPrefix) '\(stream)' and committed while this older transaction waited for the stream. "
            + "Nothing was written: run the batch again (EventStore.commit does so by itself)."
    }
}

extension WriteBatch {
    /// Holds appends only: no inbox entry, checkpoint, snapshot or command.
    var isOnlyAppends: Bool {
        inboxEntry == nil && isInboxAndAppends
    }
}
