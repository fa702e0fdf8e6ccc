public import Logging
public import ServiceLifecycle

/// A connection to an AMQP 0-9-1 broker (RabbitMQ), built on rabbitmq-c.
///
/// Each connection owns one dedicated thread: rabbitmq-c calls block and are not
/// thread-safe, so they never run on Swift's cooperative thread pool. While idle, the
/// thread waits in `poll()` on the socket and a wake-up pipe, which keeps heartbeats flowing
/// and runs work from other tasks at once.
///
/// After the first successful ``connect()``, a lost connection (broker restart, closed
/// socket, missed heartbeats) is re-opened with capped exponential backoff; the topology
/// declared through this connection is declared again and consumers are re-opened.
/// Operations issued while it recovers wait for the new connection.
///
/// ```swift
/// let connection = AMQPConnection(configuration: try .init(url: "amqp://guest:guest@127.0.0.1:5673/"), logger: logger)
/// try await connection.connect()
/// try await connection.declare(AMQPExchange(name: "order.events", kind: .topic))
/// let publisher = AMQPPublisher(connection: connection, window: 1000)
/// let outcomes = try await publisher.publish(messages)
/// await connection.close()
/// ```
///
/// Use separate connections for publishing and consuming: a publish batch occupies the
/// connection thread until its confirms arrive, which delays acknowledgements on the same
/// connection. The type conforms to `Service`: ``run()`` connects (retrying while the
/// broker is unreachable) and closes the connection on graceful shutdown. Without `run()`,
/// call ``close()`` when done; a connection that is no longer referenced (by the
/// application or by its consumers) is closed too.
public final class AMQPConnection: Sendable, Service {
    /// The configuration the connection was created with.
    public let configuration: Configuration
    let thread: ConnectionThread
    let logger: Logger

    /// Creates a connection; nothing is opened until ``connect()`` or ``run()``.
    ///
    /// - Parameters:
    ///   - configuration: Where and how to connect.
    ///   - logger: Receives connection events at info level or lower.
    public init(configuration: Configuration, logger: Logger = Logger(label: "amqp")) {
        self.configuration = configuration
        self.logger = logger
        self.thread = ConnectionThread(session: ConnectionSession(configuration: configuration, logger: logger))
    }

    deinit {
        // Nobody can use the connection any more: let the thread close it and exit.
        thread.requestStop()
    }

    /// Creates a connection from an AMQP URI; nothing is opened until ``connect()``.
    ///
    /// - Throws: ``AMQPError`` with code ``AMQPError/Code/invalidURL``.
    public convenience init(url: String, logger: Logger = Logger(label: "amqp")) throws {
        self.init(configuration: try Configuration(url: url), logger: logger)
    }

    /// Opens the connection (TCP or TLS, login, a control channel). Does nothing if it is
    /// already open or recovering.
    ///
    /// - Throws: ``AMQPError``: ``AMQPError/Code/connectionRefused``,
    ///   ``AMQPError/Code/authenticationFailed``, ``AMQPError/Code/vhostNotFound``,
    ///   ``AMQPError/Code/accessRefused``, ``AMQPError/Code/timeout``,
    ///   ``AMQPError/Code/tlsFailure``, ``AMQPError/Code/invalidArgument`` for a configuration
    ///   that ``Configuration/validate()`` rejects, ...
    public func connect() async throws {
        try configuration.validate()
        try await thread.perform { session throws(AMQPError) in try session.connect() }
    }

    /// Connects, retrying transient failures with the recovery backoff, then keeps the
    /// connection until graceful shutdown or cancellation, and closes it.
    ///
    /// - Throws: ``AMQPError`` for failures that retrying cannot fix (credentials, vhost, TLS).
    public func run() async throws {
        var attempt = 0
        while true {
            do {
                try await connect()
                break
            } catch let error as AMQPError where error.isTransient && configuration.recovery.isEnabled {
                logger.info("AMQP broker unreachable; retrying", metadata: ["error": "\(error)"])
                let delay = configuration.recovery.backoff.delay(forAttempt: attempt)
                attempt += 1
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    await close()
                    return
                }
            }
        }
        try? await gracefulShutdown()
        await close()
    }

    /// Closes the connection: ends the consumers (their delivery sequences finish; no
    /// `basic.cancel`, so the broker returns their unacknowledged deliveries as for consumers
    /// that went away, see ``AMQPConsumer/close()``), closes the AMQP connection and stops the
    /// thread. Pending operations fail with
    /// ``AMQPError/Code/closedByClient``. Closing twice is harmless.
    public func close() async {
        await thread.stop()
    }

    // MARK: Topology

    /// Declares an exchange and remembers it for re-declaration after recovery.
    ///
    /// - Throws: ``AMQPError`` with code ``AMQPError/Code/preconditionFailed`` (406) if an
    ///   exchange of that name exists with other settings.
    public func declare(_ exchange: AMQPExchange) async throws {
        try await thread.perform { session throws(AMQPError) in
            try session.control { (connection, channel) throws(AMQPError) in try connection.declare(exchange, channel: channel) }
            session.register(.exchange(exchange))
        }
    }

    /// Declares a queue and remembers it for re-declaration after recovery.
    ///
    /// - Returns: The queue's message and consumer counts.
    /// - Throws: ``AMQPError`` with code ``AMQPError/Code/preconditionFailed`` (406) if a queue
    ///   of that name exists with other settings.
    @discardableResult
    public func declare(_ queue: AMQPQueue) async throws -> AMQPQueueState {
        try await thread.perform { session throws(AMQPError) in
            let state = try session.control { (connection, channel) throws(AMQPError) in try connection.declare(queue, channel: channel) }
            session.register(.queue(queue))
            return state
        }
    }

    /// Binds a queue to an exchange and remembers the binding for recovery.
    public func bind(_ binding: AMQPBinding) async throws {
        try await thread.perform { session throws(AMQPError) in
            try session.control { (connection, channel) throws(AMQPError) in try connection.bind(binding, channel: channel) }
            session.register(.binding(binding))
        }
    }

    /// Removes a binding.
    public func unbind(_ binding: AMQPBinding) async throws {
        try await thread.perform { session throws(AMQPError) in
            try session.control { (connection, channel) throws(AMQPError) in try connection.unbind(binding, channel: channel) }
            session.unregister { $0 == .binding(binding) }
        }
    }

    /// The endpoint (cluster node) the connection is open to; `nil` while it is not
    /// connected (this does not wait for recovery).
    public var connectedEndpoint: Configuration.Endpoint? {
        get async {
            try? await thread.perform(waitsForRecovery: false) { session in session.connectedEndpoint }
        }
    }

    /// Reads a queue's message and consumer counts without declaring it.
    ///
    /// - Parameter waitsForRecovery: Whether to wait while a lost connection is re-opened
    ///   (the default) or fail at once; health checks ask without waiting.
    /// - Throws: ``AMQPError`` with code ``AMQPError/Code/notFound`` (404) if it does not
    ///   exist, or the connection's error when it is not open and `waitsForRecovery` is `false`.
    public func queueState(_ name: String, waitsForRecovery: Bool = true) async throws -> AMQPQueueState {
        try await thread.perform(waitsForRecovery: waitsForRecovery) { session throws(AMQPError) in
            try session.control { (connection, channel) throws(AMQPError) in
                try connection.declare(AMQPQueue(name: name), channel: channel, passive: true)
            }
        }
    }

    /// Checks that the connection is open now, without waiting for a recovery in progress.
    ///
    /// - Throws: ``AMQPError`` saying why it is not open (never connected, lost, closed).
    public func checkOpen() async throws {
        try await thread.perform(waitsForRecovery: false) { session throws(AMQPError) in
            try session.withConnection { _ throws(AMQPError) in () }
        }
    }

    /// Removes every ready message from a queue.
    ///
    /// - Returns: The number of messages removed.
    @discardableResult
    public func purgeQueue(_ name: String) async throws -> UInt32 {
        try await thread.perform { session throws(AMQPError) in
            try session.control { (connection, channel) throws(AMQPError) in try connection.purgeQueue(name, channel: channel) }
        }
    }

    /// Deletes a queue and forgets its declaration and bindings.
    ///
    /// - Returns: The number of messages deleted with it.
    @discardableResult
    public func deleteQueue(_ name: String, ifUnused: Bool = false, ifEmpty: Bool = false) async throws -> UInt32 {
        try await thread.perform { session throws(AMQPError) in
            let count = try session.control { (connection, channel) throws(AMQPError) in
                try connection.deleteQueue(name, ifUnused: ifUnused, ifEmpty: ifEmpty, channel: channel)
            }
            session.unregister { item in
                switch item {
                case .queue(let queue): return queue.name == name
                case .binding(let binding): return binding.destinationKind == .queue && binding.queue == name
                case .exchange: return false
                }
            }
            return count
        }
    }

    /// Deletes an exchange and forgets its declaration and bindings.
    public func deleteExchange(_ name: String, ifUnused: Bool = false) async throws {
        try await thread.perform { session throws(AMQPError) in
            try session.control { (connection, channel) throws(AMQPError) in
                try connection.deleteExchange(name, ifUnused: ifUnused, channel: channel)
            }
            session.unregister { item in
                switch item {
                case .exchange(let exchange): return exchange.name == name
                case .binding(let binding):
                    return binding.exchange == name || (binding.destinationKind == .exchange && binding.queue == name)
                case .queue: return false
                }
            }
        }
    }

    // MARK: Consuming

    /// Starts consuming from a queue with manual acknowledgements.
    ///
    /// - Parameters:
    ///   - queue: The queue name.
    ///   - prefetch: The most unacknowledged deliveries the broker sends (`basic.qos`).
    ///   - consumerTag: A tag for the subscription; empty lets the broker choose.
    ///   - exclusive: Whether the consumer must be the queue's only one: the broker refuses
    ///     it (``AMQPError/Code/accessRefused``) while the queue has other consumers, and
    ///     refuses others while it consumes.
    /// - Returns: A consumer whose ``AMQPConsumer/deliveries`` yield the messages.
    public func consume(
        queue: String, prefetch: UInt16 = 100, consumerTag: String = "", exclusive: Bool = false
    ) async throws
        -> AMQPConsumer
    {
        let (stream, continuation) = AsyncThrowingStream<Delivery, any Error>.makeStream()
        let (channel, tag) = try await thread.perform { session throws(AMQPError) in
            try session.addConsumer(
                queue: queue, prefetch: prefetch, consumerTag: consumerTag, exclusive: exclusive, continuation: continuation)
        }
        let consumer = AMQPConsumer(connection: self, channel: channel, queue: queue, consumerTag: tag, deliveries: stream)
        continuation.onTermination = { [thread] termination in
            if case .cancelled = termination {
                thread.submit(ConnectionJob(run: { $0.cancelConsumer(channel: channel) }, fail: { _ in }))
            }
        }
        return consumer
    }
}
