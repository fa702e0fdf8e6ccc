public import EventSourceryAMQP
public import EventSourceryRabbitMQ
public import Logging

extension ServiceBootstrap.Settings {
    /// The topology of this context.
    public var topology: ContextTopology {
        ContextTopology(configuration.contextDescription(contextName) ?? ContextDescription(name: contextName))
    }
}

extension ServiceBootstrap {
    /// How often a declaration that failed for a passing reason is tried in all: with the
    /// backoff of ``ReconnectBackoff`` (up to 5 s apart), about a minute and a half.
    static let declarationAttempts = 20

    /// Declares the context's topology (exchanges, inbox, dead-letter queue).
    ///
    /// With `broker.wait_for_broker` (the default) a failure that passes by itself — a queue
    /// whose node is down or still starting (404, or 541 `cluster_not_formed`), or the
    /// connection lost meanwhile (it recovers on its own) — is retried with backoff, up to
    /// 20 attempts, so a replica restarted while a cluster node is down
    /// waits for it instead of exiting.
    ///
    /// - Throws: ``StartupError`` with exit code 78 when the broker refuses a declaration
    ///   because a queue or exchange exists with other arguments (reply 406): the message
    ///   names the argument, the entry that sets it, and how to migrate; 69 for other failures.
    public static func declareTopology(_ settings: Settings, on connection: AMQPConnection, logger: Logger) async throws(StartupError) {
        let backoff = ReconnectBackoff()
        var attempt = 0
        while true {
            do {
                try await settings.topology.declare(on: connection)
                return
            } catch let error as AMQPError where error.code == .preconditionFailed {
                throw StartupError(message: settings.topologyMismatch(error), exitCode: 78)
            } catch let error as AMQPError where settings.topology.isPartitioned && "\(error)".contains("x-consistent-hash") {
                throw StartupError(
                    message:
                        "Cannot declare the topology of context '\(settings.contextName)': the broker does not know the exchange type x-consistent-hash of its inbox partitions (\(error)). Enable the plugin on every node (rabbitmq-plugins enable rabbitmq_consistent_hash_exchange), or set contexts.\(settings.contextName).consumer.partitions to 1 for a single inbox.",
                    exitCode: 69)
            } catch {
                attempt += 1
                guard settings.configuration.broker.waitForBroker, attempt < declarationAttempts, Self.passes(error), !Task.isCancelled
                else {
                    throw StartupError(message: "Cannot declare the topology of context '\(settings.contextName)': \(error)", exitCode: 69)
                }
                let delay = backoff.delay(forAttempt: attempt)
                logger.warning(
                    "Cannot declare the topology yet; retrying",
                    metadata: ["error": "\(error)", "amqp.retry_in": "\(delay)", "attempt": "\(attempt)"])
                try? await Task.sleep(for: delay)
            }
        }
    }

    /// Whether a declaration failed for a reason that passes by itself: a queue's node down
    /// or starting (404 `… is down or inaccessible`, 541 `cluster_not_formed`), the
    /// connection lost or a reply late.
    static func passes(_ error: any Error) -> Bool {
        guard let error = error as? AMQPError else { return false }
        switch error.code {
        case .notFound, .connectionClosed, .timeout: return true
        case .channelClosed: return error.replyCode == 541
        default: return false
        }
    }
}

extension ServiceBootstrap.Settings {
    /// The message for a declaration the broker refused with 406 PRECONDITION_FAILED, e.g.
    /// `inequivalent arg 'x-delivery-limit' for queue 'order.inbox' in vhost '/': received
    /// the value '3' of type 'signedint' but current is none`: the argument that differs, the
    /// entry that sets it, and how to migrate.
    public func topologyMismatch(_ error: AMQPError) -> String {
        let reply = error.replyText ?? error.message
        let argument = reply.firstMatch(of: /inequivalent arg '([^']+)'/).map { String($0.1) }
        let queue = reply.firstMatch(of: /queue '([^']+)'/).map { String($0.1) } ?? topology.inboxQueue
        var text = "Bad configuration: the broker keeps \(queue) as it was declared before: \(reply)."
        if argument == "x-delivery-limit" {
            let entry = "contexts.\(contextName).consumer.delivery_limit"
            let origin = configuration.origin(of: entry)
            text +=
                " The inbox's x-delivery-limit comes from \(entry) (\(origin), \(consumerConfiguration.deliveryLimit) now); a queue's arguments cannot change."
        } else {
            text +=
                " The argument \(argument.map { "'\($0)' " } ?? "")of the existing queue differs from this version's topology; a queue's arguments cannot change."
        }
        text +=
            " To migrate: stop the consumers, let \(queue) drain (or move its messages elsewhere), delete it (rabbitmqctl delete_queue \(queue)) and start again so it is declared anew; or set the configuration back to the existing queue's value."
        return text
    }
}

extension ServiceBootstrap.StartupError {
    /// Creates a start-up error for an executable's own checks.
    ///
    /// - Parameters:
    ///   - message: A message for the operator.
    ///   - exitCode: `78` for configuration errors, `69` when a service is unavailable.
    public init(_ message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }
}
