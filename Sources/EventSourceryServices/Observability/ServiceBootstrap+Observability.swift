public import EventSourcery
public import EventSourceryAMQP
public import EventSourceryRabbitMQ
import Foundation
public import Logging
import Metrics
public import Prometheus
public import ServiceLifecycle

extension ServiceConfiguration {
    /// The health and metrics endpoint: `observability.*` over the defaults of
    /// ``HealthEndpoint/Configuration``.
    ///
    /// - Throws: ``ConfigurationError`` for a port outside 1...65535, an empty host or a
    ///   stall limit that is not a positive number of seconds.
    public func healthEndpointConfiguration() throws(ConfigurationError) -> HealthEndpoint.Configuration {
        var configuration = HealthEndpoint.Configuration()
        if let host = observability.host {
            guard !host.isEmpty else { throw error(at: "observability.host", "must name an address, e.g. 127.0.0.1 or 0.0.0.0") }
            configuration.host = host
        }
        if let port = observability.port {
            guard (1...65535).contains(port) else { throw error(at: "observability.port", "must be within 1...65535, got \(port)") }
            configuration.port = port
        }
        if let seconds = observability.stallSeconds {
            guard seconds.isFinite, seconds > 0, seconds < 1e9 else {
                throw error(at: "observability.stall_seconds", "must be a positive number of seconds, got \(seconds)")
            }
            configuration.stallAfter = .milliseconds(Int64((seconds * 1000).rounded()))
        }
        return configuration
    }
}

extension ServiceBootstrap {
    /// Sends swift-metrics to a new Prometheus registry and returns it. Call it once per
    /// process, before creating relays and consumers (their metrics bind at creation).
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    /// The health monitor and the HTTP endpoint of a service, to run in its `ServiceGroup`;
    /// none when ``HealthEndpoint/Configuration/port`` is not set.
    ///
    /// - Parameters:
    ///   - probes: What readiness depends on (see ``brokerProbe(_:)``, ``outboxProbe(_:context:stallAfter:)``,
    ///     ``inboxProbe(_:topology:)``, ``storeProbe(_:)``).
    ///   - registry: The metrics served on `/metrics`.
    public static func healthServices(
        _ configuration: HealthEndpoint.Configuration, probes: [HealthProbe], registry: PrometheusCollectorRegistry,
        serverName: String, logger: Logger
    ) -> [any Service] {
        guard let port = configuration.port else { return [] }
        let monitor = HealthMonitor(probes: probes, interval: configuration.checkInterval, staleAfter: configuration.staleAfter)
        let application = HealthEndpoint(monitor: monitor, registry: registry).application(
            host: configuration.host, port: port, serverName: serverName, logger: logger)
        return [monitor, HTTPService(application: application, address: "\(configuration.host):\(port)")]
    }

    /// `broker`: the connection is open now (not lost, not recovering).
    public static func brokerProbe(_ connection: AMQPConnection) -> HealthProbe {
        HealthProbe(checks: ["broker"]) {
            do {
                try await connection.checkOpen()
                return [CheckResult("broker")]
            } catch {
                return [CheckResult("broker", problem: "\(error)")]
            }
        }
    }

    /// `store` and `relay`: reads the outbox counts and the oldest due entry, sets the
    /// outbox gauges (``MetricName/outboxPending``, ``MetricName/outboxParked``,
    /// ``MetricName/outboxOldestDueAge``), and decides whether the relay keeps up.
    public static func outboxProbe(_ storage: any EventStorage, context: String, stallAfter: Duration) -> HealthProbe {
        let dimensions = [("context", context)]
        let pending = Gauge(label: MetricName.outboxPending, dimensions: dimensions)
        let parked = Gauge(label: MetricName.outboxParked, dimensions: dimensions)
        let oldestDueAge = Gauge(label: MetricName.outboxOldestDueAge, dimensions: dimensions)
        return HealthProbe(checks: ["store", "relay"]) {
            do {
                let counts = try await storage.outboxCounts()
                // A lease of zero claims nothing: it lists what is due.
                let oldest = try await storage.claimOutboxEntries(limit: 1, now: Date(), leaseDuration: 0).first
                let age = oldest.map { max(0, Date().timeIntervalSince($0.event.event.createdAt)) }
                pending.record(counts.pending)
                parked.record(counts.parked)
                oldestDueAge.record(age ?? 0)
                return [
                    CheckResult("store"),
                    CheckResult.relay(oldestDueAge: age.map { .milliseconds(Int64($0 * 1000)) }, stallAfter: stallAfter),
                ]
            } catch {
                return [CheckResult("store", problem: "\(error)"), CheckResult("relay", problem: "the outbox cannot be read")]
            }
        }
    }

    /// `broker` and `consumer`: asks the broker for the inbox queues (the partitions) and the
    /// dead-letter queue without waiting for a recovery, sets the queue gauges
    /// (``MetricName/queueMessages``, ``MetricName/queueConsumers``) and checks that a
    /// consumer is subscribed to every inbox queue.
    public static func inboxProbe(_ connection: AMQPConnection, topology: ContextTopology) -> HealthProbe {
        let context = topology.context
        let inboxes = topology.inboxQueues
        let queues = inboxes + [topology.deadLetterQueue]
        let gauges = queues.map { queue in
            let dimensions = [("context", context), ("queue", queue)]
            return (
                messages: Gauge(label: MetricName.queueMessages, dimensions: dimensions),
                consumers: Gauge(label: MetricName.queueConsumers, dimensions: dimensions)
            )
        }
        return HealthProbe(checks: ["broker", "consumer"]) {
            do {
                var leastServed: (queue: String, consumers: UInt32)?
                for (queue, gauge) in zip(queues, gauges) {
                    let state = try await connection.queueState(queue, waitsForRecovery: false)
                    gauge.messages.record(state.messageCount)
                    gauge.consumers.record(state.consumerCount)
                    if inboxes.contains(queue), state.consumerCount < leastServed?.consumers ?? .max {
                        leastServed = (queue, state.consumerCount)
                    }
                }
                let inbox = leastServed ?? (topology.inboxQueue, 0)
                return [CheckResult("broker"), CheckResult.consumer(queue: inbox.queue, consumers: inbox.consumers)]
            } catch {
                return [CheckResult("broker", problem: "\(error)"), CheckResult("consumer", problem: "the broker cannot be asked")]
            }
        }
    }

    /// `store`: the store answers a read of its outbox counts.
    public static func storeProbe(_ storage: any EventStorage) -> HealthProbe {
        HealthProbe(checks: ["store"]) {
            do {
                _ = try await storage.outboxCounts()
                return [CheckResult("store")]
            } catch {
                return [CheckResult("store", problem: "\(error)")]
            }
        }
    }
}

/// Runs an HTTP application, reporting an address it cannot serve as a start-up error (69).
struct HTTPService: Service {
    let application: any Service
    let address: String

    func run() async throws {
        do {
            try await application.run()
        } catch {
            throw ServiceBootstrap.StartupError("Cannot serve HTTP on \(address): \(error)", exitCode: 69)
        }
    }
}
