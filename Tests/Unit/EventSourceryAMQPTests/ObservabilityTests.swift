import DemoContexts
@testable import EventSourceryAMQP
import EventSourcery
import EventSourceryServices
import EventSourceryTesting
import Foundation
import Prometheus
import TestSupport
import Testing

/// The readiness decision, the checks' rules, the endpoint's configuration and the metrics
/// as rendered for Prometheus, without servers.
struct ObservabilityTests {
    /// One registry for the whole process: swift-metrics is bootstrapped once.
    static let registry = ServiceBootstrap.bootstrapMetrics()

    /// Bootstraps the metrics before a test creates any: metrics bind at creation.
    init() {
        _ = Self.registry
    }

    /// The value of the sample `name{labels}` in the Prometheus text, if present.
    private func sample(_ name: String, _ labels: String) -> Double? {
        let prefix = "\(name){\(labels)} "
        return Self.registry.emitToString().split(separator: "\n").first { $0.hasPrefix(prefix) }
            .flatMap { Double($0.dropFirst(prefix.count)) }
    }

    // MARK: Readiness

    @Test func readyWhenEveryExpectedCheckPassesAndIsFresh() {
        let now = ContinuousClock.now
        let readiness = Readiness.evaluate(
            expected: ["broker", "store"],
            observations: [
                "broker": .init(CheckResult("broker"), at: now - .seconds(1)), "store": .init(CheckResult("store"), at: now),
            ],
            now: now, staleAfter: .seconds(5))
        #expect(readiness.isReady)
        #expect(readiness.reasons.isEmpty)
        #expect(readiness.json == #"{"checks":{"broker":"ok","store":"ok"},"reasons":[],"status":"ready"}"#)
    }

    @Test func notReadyWhenACheckFailsIsMissingOrStale() {
        let now = ContinuousClock.now
        let readiness = Readiness.evaluate(
            expected: ["broker", "consumer", "store"],
            observations: [
                "broker": .init(CheckResult("broker", problem: "connection refused"), at: now),
                "store": .init(CheckResult("store"), at: now - .seconds(30)),
            ],
            now: now, staleAfter: .seconds(5))
        #expect(!readiness.isReady)
        #expect(
            readiness.reasons == [
                "broker: connection refused", "consumer: no result yet", "store: no result for 30 s; the check does not finish",
            ])
        #expect(readiness.json.hasSuffix(#""status":"not ready"}"#))
        #expect(readiness.json.contains(#""broker":"connection refused""#))
    }

    @Test(.timeLimit(.minutes(1))) func aHangingProbeFailsItsCheckAndDoesNotHoldUpShutdown() async throws {
        let (gate, opener) = AsyncStream<Void>.makeStream()  // the broker probe waits until the gate opens
        let monitor = HealthMonitor(
            probes: [
                HealthProbe(checks: ["store"]) { [CheckResult("store")] },
                HealthProbe(checks: ["broker"]) {
                    for await _ in gate {}
                    return [CheckResult("broker")]
                },
            ],
            interval: .milliseconds(10), staleAfter: .seconds(5))
        let running = Task { try await monitor.run() }
        try await waitUntil(timeout: .seconds(10)) { monitor.readiness().checks["store"] == .some(nil) }
        #expect(monitor.readiness().reasons == ["broker: no result yet"])
        running.cancel()
        try await running.value
        opener.finish()
    }

    @Test func relayStallsOnlyWhenTheOldestDueEntryWaitedTooLong() {
        #expect(CheckResult.relay(oldestDueAge: nil, stallAfter: .seconds(60)).problem == nil)
        #expect(CheckResult.relay(oldestDueAge: .seconds(59), stallAfter: .seconds(60)).problem == nil)
        #expect(
            CheckResult.relay(oldestDueAge: .seconds(61), stallAfter: .seconds(60)).problem
                == "stalled: the oldest due outbox entry has waited 61 s, more than 60 s")
    }

    @Test func consumerCheckNeedsASubscriber() {
        #expect(CheckResult.consumer(queue: "order.inbox", consumers: 1).problem == nil)
        #expect(CheckResult.consumer(queue: "order.inbox", consumers: 0).problem == "no consumer is subscribed to order.inbox")
    }

    // MARK: Metrics

    @Test func consumerOutcomesMoveTheirCounters() throws {
        let metrics = ConsumerMetrics(context: "unit-consumer", handlers: ["charge"])
        let labels = #"context="unit-consumer""#
        #expect(sample(MetricName.consumerConsumed, labels) == 0)
        metrics.record([
            .processed(handlersRun: 1, alreadyProcessed: 0, skipped: 0), .processed(handlersRun: 0, alreadyProcessed: 2, skipped: 0),
            .failed(handler: "charge"), .poison(.malformedJSON),
        ])
        metrics.recordHandler("charge", since: .now - .milliseconds(20))
        #expect(sample(MetricName.consumerConsumed, labels) == 2)
        #expect(sample(MetricName.consumerDuplicatesSkipped, labels) == 2)
        #expect(sample(MetricName.consumerHandlerFailures, labels) == 1)
        #expect(sample(MetricName.consumerDeadLettered, labels) == 1)
        let handlerLabels = #"context="unit-consumer",handler="charge""#
        #expect(sample(MetricName.consumerHandlerDuration + "_count", handlerLabels) == 1)
        #expect(try #require(sample(MetricName.consumerHandlerDuration + "_sum", handlerLabels)) >= 0.02)
        #expect(sample(MetricName.consumerHandlerDuration + "_bucket", handlerLabels + #",le="0.01""#) == 0)
        #expect(sample(MetricName.consumerHandlerDuration + "_bucket", handlerLabels + #",le="+Inf""#) == 1)
    }

    @Test func relayRoundsMoveTheirCounters() {
        let metrics = RelayMetrics(context: "unit-relay")
        var round = OutboxRelay.Statistics()
        round.published = 3
        round.failed = 1
        metrics.record(round)
        metrics.record(round)
        #expect(sample(MetricName.outboxPublished, #"context="unit-relay""#) == 6)
        #expect(sample(MetricName.outboxFailedAttempts, #"context="unit-relay""#) == 2)
    }

    @Test func outboxProbeSetsTheGaugesAndDecidesTheRelayCheck() async throws {
        let storage = InMemoryEventStorage()
        let store = EventStore(storage: storage, registry: EventRegistry([ItemCounted.self]))
        let probe = ServiceBootstrap.outboxProbe(storage, context: "unit-outbox", stallAfter: .seconds(60))
        #expect(await probe.run() == [CheckResult("store"), CheckResult("relay")])
        #expect(sample(MetricName.outboxPending, #"context="unit-outbox""#) == 0)

        let created = Date().addingTimeInterval(-120)
        try await store.publish(
            (1...3).map { EventEnvelope(ItemCounted(index: $0), createdAt: created) }, to: "item-1")
        let results = await probe.run()
        #expect(results.first == CheckResult("store"))
        #expect(results.last?.problem?.hasPrefix("stalled: the oldest due outbox entry has waited 120 s") == true)
        #expect(sample(MetricName.outboxPending, #"context="unit-outbox""#) == 3)
        #expect(sample(MetricName.outboxParked, #"context="unit-outbox""#) == 0)
        #expect(try #require(sample(MetricName.outboxOldestDueAge, #"context="unit-outbox""#)) >= 120)
    }

    // MARK: Configuration

    /// Loads `text` as a configuration file with `environment`.
    private func load(_ text: String, environment: [String: String] = [:]) throws -> ServiceConfiguration {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("observability-\(UUID()).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try ServiceConfiguration.load(path: path, environment: environment)
    }

    private let file = """
        observability:
          host: 0.0.0.0
          stall_seconds: 5
        contexts:
          order:
            store: sqlite:order.sqlite
        """

    @Test func endpointIsOffByDefaultAndTakesFileEnvironmentAndOption() throws {
        let configuration = try load(file)
        #expect(try configuration.healthEndpointConfiguration() == HealthEndpoint.Configuration(host: "0.0.0.0", stallAfter: .seconds(5)))
        #expect(try load(file, environment: ["ES_HTTP_PORT": "9191"]).healthEndpointConfiguration().port == 9191)
        let settings = try ServiceBootstrap.Settings(
            configuration: configuration, context: "order", storeOverride: nil, httpPortOverride: 9292, environment: [:])
        #expect(settings.healthEndpoint.port == 9292)
        #expect(try load("contexts: {order: {store: o.sqlite}}").healthEndpointConfiguration() == HealthEndpoint.Configuration())
    }

    @Test func badEndpointValuesNameTheirOrigin() throws {
        do {
            _ = try load("observability:\n  port: 70000\ncontexts:\n  order:\n    store: o.sqlite\n")
            Issue.record("port 70000 was accepted")
        } catch {
            #expect("\(error)".hasSuffix(":2:3: observability.port: must be within 1...65535, got 70000"))
        }
        do {
            _ = try load(file, environment: ["ES_HTTP_PORT": "http"])
            Issue.record("ES_HTTP_PORT=http was accepted")
        } catch {
            #expect("\(error)" == "environment variable ES_HTTP_PORT: 'http' is not an integer")
        }
        #expect(throws: ConfigurationError.self) {
            try ServiceBootstrap.Settings(configuration: try load(file), context: "order", storeOverride: nil, httpPortOverride: 0)
        }
    }

    @Test func anOTLPEndpointIsCheckedAndNeedsAnExporterInTheBuild() throws {
        // None by default: no exporter, nothing bootstrapped.
        #expect(try load(file).otlpTracesEndpoint() == nil)
        #expect(try ServiceBootstrap.bootstrapTracing(try load(file), serviceName: "order").isEmpty)
        do {
            _ = try load("tracing:\n  otlp_endpoint: collector:4318\ncontexts:\n  order:\n    store: o.sqlite\n")
            Issue.record("an endpoint without an http scheme was accepted")
        } catch {
            #expect(
                "\(error)".hasSuffix(
                    ":2:3: tracing.otlp_endpoint: must be the http:// or https:// base URL of an OTLP/HTTP collector, "
                        + "e.g. http://127.0.0.1:4318; got 'collector:4318'"))
        }
        do {
            _ = try load("tracing:\n  endpoint: http://127.0.0.1:4318\ncontexts:\n  order:\n    store: o.sqlite\n")
            Issue.record("an unknown tracing key was accepted")
        } catch {
            #expect("\(error)".contains("endpoint"))
        }
        let environment = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"]
        #if OTLP
            #expect(try load(file, environment: environment).otlpTracesEndpoint() == "http://127.0.0.1:4318/v1/traces")
        #else
            // A build without the exporter refuses an endpoint rather than dropping the spans.
            #expect(!ServiceConfiguration.hasOTLPExporter)
            do {
                _ = try load(file, environment: environment)
                Issue.record("an endpoint was accepted by a build without the exporter")
            } catch {
                #expect(
                    "\(error)"
                        == "environment variable OTEL_EXPORTER_OTLP_ENDPOINT: this build has no OTLP exporter; "
                        + "build it with the package trait OTLP (swift build --traits OTLP) or remove the endpoint")
            }
            var configuration = try load(file)
            configuration.tracing.otlpEndpoint = "http://127.0.0.1:4318"
            #expect(throws: ServiceBootstrap.StartupError.self) {
                try ServiceBootstrap.bootstrapTracing(configuration, serviceName: "order")
            }
        #endif
    }
}
