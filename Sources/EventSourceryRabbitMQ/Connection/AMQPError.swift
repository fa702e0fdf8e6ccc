/// An error raised by the AMQP client.
///
/// Errors carry a ``Code`` to switch on, the broker's reply code and reply text when the
/// broker closed the channel or connection, and a message that says what to check.
///
/// ```swift
/// do {
///     try await connection.connect()
/// } catch let error as AMQPError where error.code == .authenticationFailed {
///     logger.error("check the user and password: \(error)")
/// }
/// ```
public struct AMQPError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as an extensible set of codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case invalidURL
            case invalidArgument
            case connectionRefused
            case hostNotFound
            case authenticationFailed
            case vhostNotFound
            case accessRefused
            case notFound
            case preconditionFailed
            case channelClosed
            case connectionClosed
            case heartbeatTimeout
            case timeout
            case tlsFailure
            case protocolError
            case closedByClient
        }

        private let base: Base

        private init(_ base: Base) { self.base = base }

        /// The URL could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// An argument was rejected before anything was sent (e.g. a window of zero).
        public static let invalidArgument = Code(.invalidArgument)
        /// Nothing accepted the TCP connection at the host and port.
        public static let connectionRefused = Code(.connectionRefused)
        /// The host name could not be resolved.
        public static let hostNotFound = Code(.hostNotFound)
        /// The broker refused the user name or password (reply code 403 during login).
        public static let authenticationFailed = Code(.authenticationFailed)
        /// The virtual host does not exist (reply code 530 during login).
        public static let vhostNotFound = Code(.vhostNotFound)
        /// The user may not use the virtual host or resource (reply code 403 or 530).
        public static let accessRefused = Code(.accessRefused)
        /// The broker closed the channel: an exchange or queue does not exist (reply code 404).
        public static let notFound = Code(.notFound)
        /// The broker closed the channel: a declaration does not match the existing one, or
        /// an acknowledgement used an unknown delivery tag (reply code 406).
        public static let preconditionFailed = Code(.preconditionFailed)
        /// The broker closed the channel for another reason; see ``AMQPError/replyCode``.
        public static let channelClosed = Code(.channelClosed)
        /// The connection is gone: the broker closed it, the socket closed, or it is recovering.
        public static let connectionClosed = Code(.connectionClosed)
        /// The broker stopped sending heartbeats; the connection is considered dead.
        public static let heartbeatTimeout = Code(.heartbeatTimeout)
        /// The TCP connect or the AMQP handshake took longer than the configured timeout.
        public static let timeout = Code(.timeout)
        /// The TLS handshake or certificate verification failed.
        public static let tlsFailure = Code(.tlsFailure)
        /// The broker or the library reported a protocol violation.
        public static let protocolError = Code(.protocolError)
        /// The client was closed by the application.
        public static let closedByClient = Code(.closedByClient)

        /// The code's name, e.g. `authenticationFailed`.
        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// The AMQP reply code the broker sent with `channel.close` or `connection.close`, if any.
    public var replyCode: UInt16?
    /// The reply text the broker sent with `channel.close` or `connection.close`, if any.
    public var replyText: String?
    /// A human-readable explanation, including what to check.
    public var message: String
    /// For a configuration's ``Code/invalidArgument``: the path of the field that is wrong,
    /// e.g. `heartbeat` or `recovery.backoff.maximumDelay`.
    public var field: String?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: What went wrong.
    ///   - message: A human-readable explanation.
    ///   - replyCode: The broker's reply code, if the broker closed the channel or connection.
    ///   - replyText: The broker's reply text.
    ///   - field: The configuration field that is wrong, for ``Code/invalidArgument``.
    public init(_ code: Code, _ message: String, replyCode: UInt16? = nil, replyText: String? = nil, field: String? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
        self.replyText = replyText
        self.field = field
    }

    /// An ``Code/invalidArgument`` error for a configuration field, as thrown by `validate()`.
    ///
    /// - Parameters:
    ///   - field: The field's name, e.g. `heartbeat`.
    ///   - problem: What is wrong, e.g. `must be 0...65535 seconds, got -5.0 seconds`.
    public static func invalidField(_ field: String, _ problem: String) -> AMQPError {
        AMQPError(.invalidArgument, "\(field) \(problem)", field: field)
    }

    /// The same error with its ``field`` nested under `parent`, for a configuration that
    /// validates a part of itself (`retry` + `attemptLimit` gives `retry.attemptLimit`).
    public func nested(under parent: String) -> AMQPError {
        guard let field else { return self }
        var error = self
        error.field = "\(parent).\(field)"
        error.message = "\(parent).\(message)"
        return error
    }

    /// The code, the message and the broker's reply code and text.
    public var description: String {
        var text = "AMQPError.\(code): \(message)"
        if let replyCode {
            text += " (reply \(replyCode)"
            if let replyText { text += " \(replyText)" }
            text += ")"
        }
        return text
    }

    /// Whether reconnecting later may help (the broker is down or restarting), as opposed to
    /// errors that need a configuration change (credentials, vhost, URL, TLS).
    public var isTransient: Bool {
        switch code {
        case .connectionRefused, .connectionClosed, .heartbeatTimeout, .timeout, .hostNotFound:
            return true
        default:
            return false
        }
    }

    /// Maps a broker's `channel.close` reply to an error.
    static func channelClose(replyCode: UInt16, replyText: String, context: String) -> AMQPError {
        let code: Code
        switch replyCode {
        case 404: code = .notFound
        case 406: code = .preconditionFailed
        case 403: code = .accessRefused
        default: code = .channelClosed
        }
        return AMQPError(code, "the broker closed the channel while \(context)", replyCode: replyCode, replyText: replyText)
    }

    /// Maps a broker's `connection.close` reply to an error.
    static func connectionClose(replyCode: UInt16, replyText: String, duringLogin: Bool, vhost: String) -> AMQPError {
        if duringLogin {
            if replyCode == 403 {
                return AMQPError(
                    .authenticationFailed, "the broker refused the login; check the user and password", replyCode: replyCode,
                    replyText: replyText)
            }
            if replyCode == 530, replyText.contains("not found") {
                return AMQPError(
                    .vhostNotFound, "the virtual host \"\(vhost)\" does not exist on the broker", replyCode: replyCode, replyText: replyText
                )
            }
            if replyCode == 530 {
                return AMQPError(
                    .accessRefused, "the user may not open the virtual host \"\(vhost)\"; check its permissions", replyCode: replyCode,
                    replyText: replyText)
            }
        }
        let code: Code = replyCode == 320 || replyCode == 200 ? .connectionClosed : (replyCode == 403 ? .accessRefused : .connectionClosed)
        return AMQPError(code, "the broker closed the connection", replyCode: replyCode, replyText: replyText)
    }
}
