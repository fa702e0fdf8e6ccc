import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The I/O side of one logical connection, owned by its ``ConnectionThread``: the current
/// rabbitmq-c connection, registered topology and consumers, operations waiting for
/// recovery and the reconnect timer.
///
/// What happens when — connecting, recovery, closing, publisher confirms — is decided by a
/// ``ConnectionStateMachine``; the session reports events to it and executes the actions it
/// returns.
///
/// Thread-confined: every method runs on the connection thread.
final class ConnectionSession {
    /// A consumer to deliver to and re-open after recovery.
    final class ConsumerRegistration {
        let queue: String
        let prefetch: UInt16
        var consumerTag: String
        let exclusive: Bool
        let continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
        var channel: UInt16

        init(
            queue: String, prefetch: UInt16, consumerTag: String, exclusive: Bool, channel: UInt16,
            continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
        ) {
            self.queue = queue
            self.prefetch = prefetch
            self.consumerTag = consumerTag
            self.exclusive = exclusive
            self.channel = channel
            self.continuation = continuation
        }
    }

    enum TopologyItem: Equatable {
        case exchange(AMQPExchange)
        case queue(AMQPQueue)
        case binding(AMQPBinding)
    }

    static let controlChannel: UInt16 = 1
    static let publishChannel: UInt16 = 2

    let configuration: AMQPConnection.Configuration
    let logger: Logger

    private var machine: ConnectionStateMachine
    private(set) var connection: RabbitMQConnection?
    private var generation: UInt64 = 0

    private var topology: [TopologyItem] = []
    private var consumers: [UInt16: ConsumerRegistration] = [:]
    private var nextChannel: UInt16 = 3

    /// Deliveries read in the current pump, handed to their consumers together at the end
    /// (one consumer wake-up per burst instead of one per message).
    private var pendingDeliveries: [(ConsumerRegistration, Delivery)] = []

    /// When to report `backoffElapsed` to the machine, while it backs off.
    private var reconnectAt: ContinuousClock.Instant?
    private var parked: [ConnectionJob] = []

    /// Set by the thread: the read end of the wake-up pipe; `beginBlocking` is called right
    /// before `poll` and returns false if jobs arrived meanwhile (then `poll` is skipped);
    /// `endBlocking` is called after `poll` with whether the pipe was readable.
    var wakeDescriptor: Int32 = -1
    var beginBlocking: () -> Bool = { true }
    var endBlocking: (_ pipeReadable: Bool) -> Void = { _ in }

    init(configuration: AMQPConnection.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.machine = ConnectionStateMachine(recovery: configuration.recovery, endpointCount: configuration.endpoints.count)
    }

    // MARK: Jobs

    func execute(_ job: ConnectionJob) {
        job.run(self)
    }

    /// Runs jobs in order.
    func execute(_ jobs: [ConnectionJob]) {
        for job in jobs { job.run(self) }
    }

    /// Runs an operation now, or keeps `job` until the connection is back (or recovery
    /// gives up).
    ///
    /// - Parameters:
    ///   - job: The job to keep (created only then); resumed, it asks again.
    ///   - waitsForRecovery: Whether the operation waits while the connection recovers.
    ///   - operation: The operation, run at once unless it waits.
    func runOrPark(_ job: @autoclosure () -> ConnectionJob, waitsForRecovery: Bool, operation: () -> Void) {
        switch machine.operationSubmitted(waitsForRecovery: waitsForRecovery) {
        case .run: operation()
        case .park: parked.append(job())
        }
    }

    /// Runs `body` with the live connection; afterwards notices a dead connection.
    func withConnection<T>(_ body: (RabbitMQConnection) throws(AMQPError) -> T) throws(AMQPError) -> T {
        guard let connection, connection.isOpen else { throw machine.notConnectedError }
        do {
            return try body(connection)
        } catch {
            if !connection.isOpen { connectionLost(error) }
            throw error
        }
    }

    /// Runs an RPC on the control channel, reopening it if the broker closed it.
    func control<T>(_ body: (RabbitMQConnection, UInt16) throws(AMQPError) -> T) throws(AMQPError) -> T {
        try withConnection { (connection) throws(AMQPError) -> T in
            if connection.closedChannels.contains(Self.controlChannel) {
                try connection.openChannel(Self.controlChannel)
            }
            return try body(connection, Self.controlChannel)
        }
    }

    // MARK: Executing the state machine's actions

    /// Opens the first connection; errors are thrown, not retried. Does nothing if the
    /// connection is open or recovering.
    func connect() throws(AMQPError) {
        if let error = perform(machine.connectRequested()) { throw error }
    }

    /// Executes `action` and the actions that follow from its outcome.
    ///
    /// - Returns: The error to throw to the caller of ``connect()``, if any.
    @discardableResult
    private func perform(_ action: ConnectionStateMachine.Action) -> AMQPError? {
        switch action {
        case .none:
            return nil
        case .openConnection(let endpoint):
            do {
                try establish(configuration.endpoints[endpoint])
            } catch {
                return perform(machine.connectFailed(error))
            }
            return perform(machine.connected())
        case .reportConnectFailure(let error):
            return error
        case .scheduleReconnect(let attempt, let delay, let error):
            if attempt == 0 {
                logger.info("AMQP connection lost; reconnecting", metadata: ["error": "\(error)"])
            } else {
                logger.debug("AMQP reconnect failed", metadata: ["error": "\(error)", "amqp.retry_in": "\(delay)"])
            }
            reconnectAt = .now + delay
            return nil
        case .declareTopology:
            redeclareTopology()
            return perform(machine.topologyDeclared())
        case .reopenConsumers:
            reopenConsumers()
            return perform(machine.consumersReopened())
        case .resumeParkedOperations(let attempts):
            logger.info("AMQP connection recovered", metadata: ["amqp.attempts": "\(attempts)"])
            let jobs = parked
            parked = []
            for job in jobs { job.run(self) }
            return nil
        case .closeConnection(let cleanup):
            // No basic.cancel first: closing ends the consumers, and a cancelled consumer of a
            // single-active-consumer quorum queue hands the queue over while it still holds
            // its unacknowledged messages, which then reach the next consumer after newer
            // ones. A consumer that goes with its channel has them returned first.
            connection?.close()
            cleanUp(cleanup)
            return nil
        case .cleanUp(let cleanup):
            cleanUp(cleanup)
            return nil
        }
    }

    private func establish(_ endpoint: AMQPConnection.Configuration.Endpoint) throws(AMQPError) {
        generation += 1
        let connection = try RabbitMQConnection(configuration: configuration, endpoint: endpoint, generation: generation)
        try connection.openChannel(Self.controlChannel)
        self.connection = connection
        logger.info(
            "AMQP connection open",
            metadata: [
                "amqp.host": "\(endpoint.host)", "amqp.port": "\(endpoint.port)",
                "amqp.vhost": "\(configuration.vhost)", "amqp.heartbeat": "\(connection.negotiatedHeartbeat)",
            ])
    }

    /// The endpoint of the live connection, if any.
    var connectedEndpoint: AMQPConnection.Configuration.Endpoint? {
        guard let connection, connection.isOpen else { return nil }
        return connection.endpoint
    }

    /// Discards a dead connection and tells the machine (which recovers or gives up).
    func connectionLost(_ error: AMQPError) {
        guard connection != nil else { return }
        flushDeliveries()
        connection = nil
        perform(machine.connectionLost(error))
    }

    /// Fails every waiting operation and ends every consumer.
    private func cleanUp(_ cleanup: ConnectionStateMachine.Cleanup) {
        connection = nil
        reconnectAt = nil
        let error = cleanup.error
        switch cleanup {
        case .closedByApplication:
            break
        case .connectionLost:
            logger.info("AMQP connection lost", metadata: ["error": "\(error)"])
        case .recoveryGaveUp(_, let attempts):
            logger.info("AMQP reconnect failed; giving up", metadata: ["error": "\(error)", "amqp.attempts": "\(attempts)"])
        }
        for consumer in consumers.values {
            if case .closedByApplication = cleanup { consumer.continuation.finish() } else { consumer.continuation.finish(throwing: error) }
        }
        consumers = [:]
        let jobs = parked
        parked = []
        for job in jobs { job.fail(error) }
    }

    /// Closes the connection and ends all consumers; runs when the thread stops.
    func shutdown() {
        perform(machine.closeRequested())
    }

    func register(_ item: TopologyItem) {
        if !topology.contains(item) { topology.append(item) }
    }

    func unregister(where predicate: (TopologyItem) -> Bool) {
        topology.removeAll(where: predicate)
    }

    // MARK: Idle loop

    /// Called by the thread when no jobs are queued: waits for broker frames, the wake-up
    /// pipe or the next reconnect attempt.
    func idle() {
        if let connection, !connection.isOpen {
            // A call failed without going through connectionLost (best-effort cleanup paths).
            connectionLost(AMQPError(.connectionClosed, "the connection was lost"))
            return
        }
        if let connection {
            if connection.hasBufferedInput {
                pump()
                return
            }
            var fds = [
                pollfd(fd: connection.fileDescriptor, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0),
            ]
            if beginBlocking() {
                _ = poll(&fds, 2, pollIntervalMilliseconds)
                endBlocking(fds[1].revents != 0)
            }
            pump()
        } else if let next = reconnectAt {
            let now = ContinuousClock.now
            if now >= next {
                reconnectAt = nil
                perform(machine.backoffElapsed())
            } else {
                waitForWake(milliseconds: Int32(clamping: Int64((next - now).seconds * 1000) + 1))
            }
        } else {
            waitForWake(milliseconds: 1000)
        }
    }

    private var pollIntervalMilliseconds: Int32 {
        // Wake at least twice per heartbeat interval so rabbitmq-c sends heartbeats in time
        // and notices missing ones.
        // With TLS, OpenSSL may hold decrypted bytes that poll cannot see: poll more often.
        let cap = connection?.endpoint.tls == nil ? 1000 : 100
        let heartbeat = connection?.negotiatedHeartbeat ?? 0
        return Int32(heartbeat > 0 ? min(cap, heartbeat * 250) : cap)
    }

    private func waitForWake(milliseconds: Int32) {
        var fds = [pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0)]
        guard beginBlocking() else { return }
        _ = poll(&fds, 1, milliseconds)
        endBlocking(fds[0].revents != 0)
    }

    /// Reads every frame that is already available, without blocking.
    func pump() {
        guard let connection, connection.isOpen else { return }
        defer { flushDeliveries() }
        do {
            while let event = try connection.nextEvent(timeout: .zero) {
                handle(event)
                if !connection.isOpen { break }
            }
        } catch {
            connectionLost(error)
        }
    }

    /// Hands buffered deliveries to their consumers, in order.
    private func flushDeliveries() {
        guard !pendingDeliveries.isEmpty else { return }
        for (consumer, delivery) in pendingDeliveries {
            consumer.continuation.yield(delivery)
        }
        pendingDeliveries.removeAll(keepingCapacity: true)
    }

    /// Routes a frame: deliveries to their consumers, confirms and the publishing channel's
    /// fate to the state machine (confirms outside a publish batch belong to no one).
    ///
    /// - Returns: The next step of the running publish batch, for frames of the publishing
    ///   channel.
    @discardableResult
    private func handle(_ event: RabbitMQConnection.Event) -> ConnectionStateMachine.PublishAction? {
        switch event {
        case .delivery(let channel, let delivery):
            if let consumer = consumers[channel] {
                pendingDeliveries.append((consumer, delivery))
            }
        case .ack(Self.publishChannel, let tag, let multiple):
            return machine.ackReceived(tag: tag, multiple: multiple)
        case .nack(Self.publishChannel, let tag, let multiple):
            return machine.nackReceived(tag: tag, multiple: multiple)
        case .returned(Self.publishChannel, let messageId, let replyCode, let replyText):
            return machine.returnReceived(messageId: messageId, replyCode: replyCode, replyText: replyText)
        case .ack, .nack, .returned:
            break
        case .channelClosed(let channel, let error):
            flushDeliveries()
            logger.info("AMQP channel closed by the broker", metadata: ["amqp.channel": "\(channel)", "error": "\(error)"])
            if channel == Self.publishChannel {
                return machine.publishChannelClosed(error)
            } else if let consumer = consumers.removeValue(forKey: channel) {
                consumer.continuation.finish(throwing: error)
            }
        case .cancelledByBroker(let channel, let consumerTag):
            flushDeliveries()
            logger.info("AMQP consumer cancelled by the broker", metadata: ["amqp.consumer_tag": "\(consumerTag)"])
            if let consumer = consumers.removeValue(forKey: channel) {
                consumer.continuation.finish(
                    throwing: AMQPError(
                        .notFound,
                        "the broker cancelled consumer \"\(consumerTag)\" on queue \"\(consumer.queue)\" (was the queue deleted?)"))
                try? connection?.closeChannel(channel)
            }
        case .other:
            break
        }
        return nil
    }

    // MARK: Recovery

    /// Declares the registered topology on the new connection; stops if it is lost.
    private func redeclareTopology() {
        for item in topology {
            do throws(AMQPError) {
                try control { (connection, channel) throws(AMQPError) in
                    switch item {
                    case .exchange(let exchange): try connection.declare(exchange, channel: channel)
                    case .queue(let queue): _ = try connection.declare(queue, channel: channel)
                    case .binding(let binding): try connection.bind(binding, channel: channel)
                    }
                }
            } catch {
                logger.info("AMQP topology re-declaration failed", metadata: ["error": "\(error)"])
                if connection == nil { return }
            }
        }
    }

    /// Re-opens the registered consumers on the new connection. A consumer the broker
    /// refuses ends with the error; if the connection is lost, the rest stay registered for
    /// the next attempt.
    private func reopenConsumers() {
        for registration in consumers.values.sorted(by: { $0.channel < $1.channel }) {
            do throws(AMQPError) {
                try openConsumer(registration)
            } catch {
                if connection == nil { return }
                logger.info(
                    "AMQP consumer could not be re-opened", metadata: ["amqp.queue": "\(registration.queue)", "error": "\(error)"])
                consumers[registration.channel] = nil
                registration.continuation.finish(throwing: error)
            }
        }
    }

    // MARK: Consumers

    func addConsumer(
        queue: String, prefetch: UInt16, consumerTag: String, exclusive: Bool,
        continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
    ) throws(AMQPError) -> (channel: UInt16, consumerTag: String) {
        let channel = allocateChannel()
        let registration = ConsumerRegistration(
            queue: queue, prefetch: prefetch, consumerTag: consumerTag, exclusive: exclusive, channel: channel,
            continuation: continuation)
        try openConsumer(registration)
        return (channel, registration.consumerTag)
    }

    private func openConsumer(_ registration: ConsumerRegistration) throws(AMQPError) {
        try withConnection { (connection) throws(AMQPError) in
            try connection.openChannel(registration.channel)
            do throws(AMQPError) {
                try connection.qos(prefetchCount: registration.prefetch, channel: registration.channel)
                registration.consumerTag = try connection.consume(
                    queue: registration.queue, consumerTag: registration.consumerTag, exclusive: registration.exclusive,
                    channel: registration.channel)
            } catch {
                if connection.isOpen, !connection.closedChannels.contains(registration.channel) {
                    try? connection.closeChannel(registration.channel)
                }
                throw error
            }
        }
        consumers[registration.channel] = registration
        logger.debug("AMQP consumer open", metadata: ["amqp.queue": "\(registration.queue)", "amqp.channel": "\(registration.channel)"])
    }

    private func allocateChannel() -> UInt16 {
        let limit = configuration.channelMax == 0 ? UInt16(2047) : configuration.channelMax
        for _ in 0..<Int(limit) {
            let candidate = nextChannel
            nextChannel = nextChannel >= limit ? 3 : nextChannel + 1
            if consumers[candidate] == nil { return candidate }
        }
        return nextChannel
    }

    /// Ends a consumer: with `basic.cancel` first when `cancelsFirst`, else by closing its
    /// channel alone (see ``AMQPConsumer/close()``).
    func cancelConsumer(channel: UInt16, cancelsFirst: Bool = true) {
        guard let consumer = consumers.removeValue(forKey: channel) else { return }
        if let connection, connection.isOpen {
            do {
                if cancelsFirst { try connection.cancel(consumerTag: consumer.consumerTag, channel: channel) }
                try connection.closeChannel(channel)
            } catch {
                if !connection.isOpen { connectionLost(error) }
            }
        }
        consumer.continuation.finish()
    }

    /// Sends queued acknowledgements in order. Stale ones (their channel or connection is
    /// gone) are dropped: the broker requeued those messages already. Several go out with the
    /// socket corked, so the broker receives them in a few TCP segments.
    func acknowledge(_ requests: [AcknowledgementRequest]) {
        guard let connection, connection.isOpen else {
            logger.debug("AMQP acknowledgements dropped: not connected", metadata: ["amqp.count": "\(requests.count)"])
            return
        }
        let corked = requests.count > 1
        if corked { connection.setCorked(true) }
        defer { if corked, connection.isOpen { connection.setCorked(false) } }
        for request in requests {
            guard connection.generation == request.generation, consumers[request.channel] != nil,
                !connection.closedChannels.contains(request.channel)
            else {
                logger.debug(
                    "AMQP acknowledgement dropped: the delivery's channel or connection is gone",
                    metadata: ["amqp.channel": "\(request.channel)"])
                continue
            }
            do throws(AMQPError) {
                switch request.kind {
                case .ack(let multiple):
                    try connection.ack(tag: request.deliveryTag, multiple: multiple, channel: request.channel)
                case .nack(let multiple, let requeue):
                    try connection.nack(tag: request.deliveryTag, multiple: multiple, requeue: requeue, channel: request.channel)
                case .reject(let requeue):
                    try connection.reject(tag: request.deliveryTag, requeue: requeue, channel: request.channel)
                }
            } catch {
                if !connection.isOpen {
                    connectionLost(error)
                    return
                }
            }
        }
    }

    // MARK: Publishing

    /// Publishes `messages` with confirms, keeping at most `window` unconfirmed, and waits
    /// for every outcome. Runs entirely on the connection thread; the state machine decides
    /// each step.
    ///
    /// - Throws: ``AMQPError`` if there is no connection to publish on.
    func publish(
        _ messages: [OutgoingMessage], window: Int, measureLatency: Bool
    ) throws(AMQPError) -> (outcomes: [PublishOutcome], latencies: [Duration]) {
        let clock = ContinuousClock()
        var sentAt: [ContinuousClock.Instant] = []
        var latencies: [Duration] = []
        if measureLatency {
            sentAt.reserveCapacity(messages.count)
            latencies.reserveCapacity(messages.count)
        }
        var action = machine.publishRequested(
            messages.map { .init(messageId: $0.properties.messageId, mandatory: $0.mandatory) }, window: window)
        while true {
            switch action {
            case .fail(let error):
                throw error
            case .finish(let outcomes):
                if measureLatency {
                    let now = clock.now
                    while latencies.count < sentAt.count { latencies.append(now - sentAt[latencies.count]) }
                }
                return (outcomes, latencies)
            case .openPublishChannel:
                action = openPublishChannel()
            case .publish(let indices):
                guard let connection else {
                    action = machine.publishChannelFailed(machine.notConnectedError)
                    continue
                }
                // Cork bursts of several messages (not the one-by-one steady state); uncork
                // before waiting for the broker.
                let burst = indices.count >= 4
                if burst { connection.setCorked(true) }
                var failure: AMQPError?
                for index in indices {
                    do throws(AMQPError) {
                        try connection.publish(messages[index], channel: Self.publishChannel)
                    } catch {
                        failure = error
                        break
                    }
                    if measureLatency { sentAt.append(clock.now) }
                }
                if burst, connection.isOpen { connection.setCorked(false) }
                if let failure, connection.isOpen {
                    action = machine.publishChannelFailed(failure)
                } else if let failure {
                    connectionLost(failure)
                    action = machine.nextPublishAction()
                } else {
                    action = machine.messagesPublished(indices)
                }
            case .awaitConfirms:
                guard let connection else {
                    action = machine.publishChannelFailed(machine.notConnectedError)
                    continue
                }
                var next: ConnectionStateMachine.PublishAction?
                do throws(AMQPError) {
                    if let event = try connection.nextEvent(timeout: .milliseconds(Int64(pollIntervalMilliseconds))) {
                        next = handle(event)
                        flushDeliveries()
                    }
                } catch {
                    connectionLost(error)
                }
                if measureLatency {
                    // Confirms arrive in publish order in practice; an out-of-order one is
                    // counted when the older ones arrive.
                    let now = clock.now
                    while latencies.count < sentAt.count, machine.isResolved(latencies.count) {
                        latencies.append(now - sentAt[latencies.count])
                    }
                }
                action = next ?? machine.nextPublishAction()
            }
        }
    }

    /// Opens the publishing channel in confirm mode and reports the result.
    private func openPublishChannel() -> ConnectionStateMachine.PublishAction {
        do throws(AMQPError) {
            try withConnection { (connection) throws(AMQPError) in
                try connection.openChannel(Self.publishChannel)
                try connection.confirmSelect(channel: Self.publishChannel)
            }
        } catch {
            // A lost connection was reported by withConnection and ended the batch.
            return connection == nil ? machine.nextPublishAction() : machine.publishChannelFailed(error)
        }
        return machine.publishChannelOpened()
    }
}
