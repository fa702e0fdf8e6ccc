import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The state of one logical connection, owned by its ``ConnectionThread``: the current
/// rabbitmq-c connection, registered topology and consumers, publisher-confirm bookkeeping
/// and the recovery schedule.
///
/// Thread-confined: every method runs on the connection thread.
final class ConnectionSession {
    /// A consumer to deliver to and re-open after recovery.
    final class ConsumerRegistration {
        let queue: String
        let prefetch: UInt16
        var consumerTag: String
        let continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
        var channel: UInt16

        init(
            queue: String, prefetch: UInt16, consumerTag: String, channel: UInt16,
            continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
        ) {
            self.queue = queue
            self.prefetch = prefetch
            self.consumerTag = consumerTag
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

    private(set) var connection: RabbitMQConnection?
    private var generation: UInt64 = 0
    private var everConnected = false
    private var closing = false

    private var topology: [TopologyItem] = []
    private var consumers: [UInt16: ConsumerRegistration] = [:]
    private var nextChannel: UInt16 = 3

    private var publishChannelReady = false
    private var publishNextTag: UInt64 = 1

    /// Deliveries read in the current pump, handed to their consumers together at the end
    /// (one consumer wake-up per burst instead of one per message).
    private var pendingDeliveries: [(ConsumerRegistration, Delivery)] = []

    private var recovering = false
    private var reconnectAttempt = 0
    private var nextReconnect: ContinuousClock.Instant?
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
    }

    // MARK: Jobs

    func execute(_ job: ConnectionJob) {
        job.run(self)
    }

    /// Runs jobs in order.
    func execute(_ jobs: [ConnectionJob]) {
        for job in jobs { job.run(self) }
    }

    /// Whether a lost connection is being re-established.
    var isRecovering: Bool { recovering }

    /// Keeps a job until the connection is back (or recovery gives up).
    func park(_ job: ConnectionJob) {
        parked.append(job)
    }

    /// Runs `body` with the live connection; afterwards notices a dead connection.
    func withConnection<T>(_ body: (RabbitMQConnection) throws(AMQPError) -> T) throws(AMQPError) -> T {
        guard let connection, connection.isOpen else {
            throw AMQPError(.connectionClosed, recovering ? "the connection is recovering" : "not connected")
        }
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

    // MARK: Connecting

    /// Opens the first connection; errors are thrown, not retried.
    func connect() throws(AMQPError) {
        if let connection, connection.isOpen { return }
        if recovering { return }
        try establish()
        everConnected = true
    }

    private func establish() throws(AMQPError) {
        generation += 1
        let connection = try RabbitMQConnection(configuration: configuration, generation: generation)
        try connection.openChannel(Self.controlChannel)
        self.connection = connection
        publishChannelReady = false
        publishNextTag = 1
        logger.info(
            "AMQP connection open",
            metadata: [
                "amqp.host": "\(configuration.host)", "amqp.port": "\(configuration.port)",
                "amqp.vhost": "\(configuration.vhost)", "amqp.heartbeat": "\(connection.negotiatedHeartbeat)",
            ])
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
        if let connection, connection.isOpen {
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
        } else if recovering, let next = nextReconnect {
            let now = ContinuousClock.now
            if now >= next {
                attemptReconnect()
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
        let cap = configuration.tls == nil ? 1000 : 100
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

    private func handle(_ event: RabbitMQConnection.Event) {
        switch event {
        case .delivery(let channel, let delivery):
            if let consumer = consumers[channel] {
                pendingDeliveries.append((consumer, delivery))
            }
        case .ack, .nack, .returned:
            // Confirms outside a publish batch belong to no one (the batch that published
            // the message already ended with the channel).
            break
        case .channelClosed(let channel, let error):
            flushDeliveries()
            logger.info("AMQP channel closed by the broker", metadata: ["amqp.channel": "\(channel)", "amqp.error": "\(error)"])
            if channel == Self.publishChannel {
                publishChannelReady = false
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
    }

    // MARK: Recovery

    /// Discards a dead connection and starts recovery (or fails everything without it).
    func connectionLost(_ error: AMQPError) {
        guard connection != nil else { return }
        flushDeliveries()
        connection = nil
        publishChannelReady = false
        if !closing && everConnected && configuration.recovery.isEnabled {
            logger.info("AMQP connection lost; reconnecting", metadata: ["amqp.error": "\(error)"])
            recovering = true
            reconnectAttempt = 0
            nextReconnect = .now + configuration.recovery.backoff.delay(forAttempt: 0)
        } else {
            logger.info("AMQP connection lost", metadata: ["amqp.error": "\(error)"])
            failEverything(error)
        }
    }

    private func attemptReconnect() {
        do {
            try establish()
        } catch {
            reconnectAttempt += 1
            if let maximum = configuration.recovery.maximumAttempts, reconnectAttempt >= maximum {
                logger.info(
                    "AMQP reconnect failed; giving up", metadata: ["amqp.error": "\(error)", "amqp.attempts": "\(reconnectAttempt)"])
                recovering = false
                failEverything(error)
                return
            }
            let delay = configuration.recovery.backoff.delay(forAttempt: reconnectAttempt)
            logger.debug("AMQP reconnect failed", metadata: ["amqp.error": "\(error)", "amqp.retry_in": "\(delay)"])
            nextReconnect = .now + delay
            return
        }
        recovering = false
        nextReconnect = nil
        logger.info("AMQP connection recovered", metadata: ["amqp.attempts": "\(reconnectAttempt + 1)"])
        redeclareTopology()
        reopenConsumers()
        let jobs = parked
        parked = []
        for job in jobs { job.run(self) }
    }

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
                logger.info("AMQP topology re-declaration failed", metadata: ["amqp.error": "\(error)"])
                if connection == nil { return }
            }
        }
    }

    private func reopenConsumers() {
        let registrations = consumers.values.sorted { $0.channel < $1.channel }
        consumers = [:]
        for registration in registrations {
            do throws(AMQPError) {
                try openConsumer(registration)
            } catch {
                logger.info(
                    "AMQP consumer could not be re-opened", metadata: ["amqp.queue": "\(registration.queue)", "amqp.error": "\(error)"])
                registration.continuation.finish(throwing: error)
                if connection == nil { return }
            }
        }
    }

    private func failEverything(_ error: AMQPError) {
        for consumer in consumers.values {
            if closing { consumer.continuation.finish() } else { consumer.continuation.finish(throwing: error) }
        }
        consumers = [:]
        let jobs = parked
        parked = []
        for job in jobs { job.fail(error) }
    }

    /// Closes the connection and ends all consumers; runs when the thread stops.
    func shutdown() {
        closing = true
        recovering = false
        if let connection {
            for consumer in consumers.values {
                try? connection.cancel(consumerTag: consumer.consumerTag, channel: consumer.channel)
            }
            connection.close()
        }
        connection = nil
        failEverything(AMQPError(.closedByClient, "the connection was closed by the application"))
    }

    // MARK: Consumers

    func addConsumer(
        queue: String, prefetch: UInt16, consumerTag: String, continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
    ) throws(AMQPError) -> (channel: UInt16, consumerTag: String) {
        let channel = allocateChannel()
        let registration = ConsumerRegistration(
            queue: queue, prefetch: prefetch, consumerTag: consumerTag, channel: channel, continuation: continuation)
        try openConsumer(registration)
        return (channel, registration.consumerTag)
    }

    private func openConsumer(_ registration: ConsumerRegistration) throws(AMQPError) {
        try withConnection { (connection) throws(AMQPError) in
            try connection.openChannel(registration.channel)
            do throws(AMQPError) {
                try connection.qos(prefetchCount: registration.prefetch, channel: registration.channel)
                registration.consumerTag = try connection.consume(
                    queue: registration.queue, consumerTag: registration.consumerTag, exclusive: false, channel: registration.channel)
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

    func cancelConsumer(channel: UInt16) {
        guard let consumer = consumers.removeValue(forKey: channel) else { return }
        if let connection, connection.isOpen {
            do {
                try connection.cancel(consumerTag: consumer.consumerTag, channel: channel)
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
    /// for every outcome. Runs entirely on the connection thread.
    func publish(_ messages: [OutgoingMessage], window: Int, measureLatency: Bool) -> (outcomes: [PublishOutcome], latencies: [Duration]) {
        guard !messages.isEmpty else { return ([], []) }
        do throws(AMQPError) {
            try ensurePublishChannel()
        } catch {
            return (Array(repeating: .notConfirmed(error), count: messages.count), [])
        }
        guard let connection else {
            return (Array(repeating: .notConfirmed(AMQPError(.connectionClosed, "not connected")), count: messages.count), [])
        }
        var tracker = ConfirmTracker(count: messages.count, window: window, firstTag: publishNextTag)
        let clock = ContinuousClock()
        var sentAt: [ContinuousClock.Instant] = []
        var latencies: [Duration] = []
        if measureLatency {
            sentAt.reserveCapacity(messages.count)
            latencies.reserveCapacity(messages.count)
        }

        while !tracker.isComplete {
            var progress = false
            // Cork bursts of several messages (not the one-by-one steady state).
            let burst = min(tracker.window - tracker.outstanding, messages.count - tracker.publishedCount) >= 4
            if burst { connection.setCorked(true) }
            while tracker.canPublish {
                let index = tracker.publishedCount
                let message = messages[index]
                do throws(AMQPError) {
                    try connection.publish(message, channel: Self.publishChannel)
                } catch {
                    tracker.failOutstanding(error)
                    if !connection.isOpen { connectionLost(error) }
                    break
                }
                if measureLatency { sentAt.append(clock.now) }
                tracker.didPublish(index: index, messageId: message.properties.messageId, mandatory: message.mandatory)
                publishNextTag += 1
                progress = true
            }
            // Uncork before waiting for the broker.
            if burst { connection.setCorked(false) }
            if tracker.isComplete { break }
            // Block for the next frame only when nothing more may be published.
            let timeout: Duration = progress && tracker.canPublish ? .zero : .milliseconds(Int64(pollIntervalMilliseconds))
            do throws(AMQPError) {
                if let event = try connection.nextEvent(timeout: timeout) {
                    switch event {
                    case .ack(Self.publishChannel, let tag, let multiple):
                        tracker.ack(tag: tag, multiple: multiple)
                    case .nack(Self.publishChannel, let tag, let multiple):
                        tracker.nack(tag: tag, multiple: multiple)
                    case .returned(Self.publishChannel, let messageId, let replyCode, let replyText):
                        tracker.returned(messageId: messageId, replyCode: replyCode, replyText: replyText)
                    case .channelClosed(Self.publishChannel, let error):
                        publishChannelReady = false
                        tracker.failOutstanding(error)
                    default:
                        handle(event)
                        flushDeliveries()
                    }
                }
            } catch {
                tracker.failOutstanding(error)
                connectionLost(error)
            }
            if measureLatency {
                // Confirms arrive in publish order in practice; an out-of-order one is
                // counted when the older ones arrive.
                let now = clock.now
                while latencies.count < sentAt.count, tracker.outcomes[latencies.count] != nil {
                    latencies.append(now - sentAt[latencies.count])
                }
            }
        }
        return (tracker.results, latencies)
    }

    private func ensurePublishChannel() throws(AMQPError) {
        if publishChannelReady, let connection, connection.isOpen, !connection.closedChannels.contains(Self.publishChannel) { return }
        try withConnection { (connection) throws(AMQPError) in
            if connection.closedChannels.contains(Self.publishChannel) || !publishChannelReady {
                try connection.openChannel(Self.publishChannel)
            }
            try connection.confirmSelect(channel: Self.publishChannel)
        }
        publishChannelReady = true
        publishNextTag = 1
    }
}
