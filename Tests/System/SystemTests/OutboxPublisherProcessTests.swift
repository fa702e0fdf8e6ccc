import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import Foundation
import Testing

/// The `outbox-publisher` executable, run as a real process.
@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct OutboxPublisherProcessTests {
    /// The test environment's AMQP_URL would override the configuration file.
    static let withoutOverrides = ["AMQP_URL": ""]
    /// Exits 69 at once when the broker cannot be reached, instead of waiting for it.
    static let failFast = ["AMQP_URL": "", "ES_BROKER_WAIT": "false"]

    private func configuration(brokerURL: String, relay: String = "batch_size: 500", store: String) -> String {
        """
        broker:
          url: \(brokerURL)
        relay:
          \(relay)
        contexts:
          sample:
            store: sqlite:\(store)
            publishes: [ItemCounted]
        """
    }

    private func writeConfiguration(_ text: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent("eventsourcery.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func wrongCredentialsFailWithAReadableMessage() async throws {
        let fixture = try await RelayFixture()
        defer { Task { await fixture.tearDown() } }
        var url = URLComponents(string: TestBroker.url)!
        url.password = "not-the-password"
        let config = try writeConfiguration(
            configuration(brokerURL: url.string!, store: fixture.directory.path + "/p.sqlite"), in: fixture.directory)
        let result = try await ChildProcess.run(
            BuiltProducts.path("outbox-publisher"), ["--context", "sample", "--config", config, "--once"],
            environment: Self.failFast)
        #expect(result.status == 69)
        #expect(result.standardError.contains("Cannot connect to the broker"))
        #expect(result.standardError.lowercased().contains("password") || result.standardError.contains("403"))
    }

    @Test func unreachableBrokerFailsWithAReadableMessage() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("publisher-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try writeConfiguration(
            configuration(brokerURL: "amqp://guest:guest@127.0.0.1:1/", store: directory.path + "/p.sqlite"), in: directory)
        let result = try await ChildProcess.run(
            BuiltProducts.path("outbox-publisher"), ["--context", "sample", "--config", config, "--once"],
            environment: Self.failFast)
        #expect(result.status == 69)
        #expect(result.standardError.contains("Cannot connect to the broker at 127.0.0.1:1"))
    }

    @Test func byDefaultItWaitsForTheBrokerAndStopsCleanlyOnSigtermWhileWaiting() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("publisher-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try writeConfiguration(
            configuration(brokerURL: "amqp://guest:guest@127.0.0.1:1/", store: directory.path + "/p.sqlite"), in: directory)
        let publisher = try ChildProcess.start(
            BuiltProducts.path("outbox-publisher"), ["--context", "sample", "--config", config], environment: Self.withoutOverrides)
        try await waitUntil(timeout: .seconds(30)) { publisher.standardErrorSoFar.contains("Broker unavailable; retrying") }
        publisher.signal(SIGTERM)
        let result = try await publisher.wait()
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.contains("Stopped by a signal while connecting to the broker"))
    }

    @Test func invalidConfigurationNamesTheEntry() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("publisher-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let config = try writeConfiguration(
            configuration(brokerURL: TestBroker.url, relay: "batch_size: 0", store: directory.path + "/p.sqlite"), in: directory)
        let bad = try await ChildProcess.run(BuiltProducts.path("outbox-publisher"), ["--context", "sample", "--config", config, "--once"])
        #expect(bad.status == 78)
        #expect(bad.standardError.contains("\(config):4:3: relay.batch_size: batchSize must be positive, got 0"))

        let typo = try writeConfiguration(
            configuration(brokerURL: TestBroker.url, relay: "batch_sise: 10", store: directory.path + "/p.sqlite"), in: directory)
        let misspelled = try await ChildProcess.run(
            BuiltProducts.path("outbox-publisher"), ["--context", "sample", "--config", typo, "--once"])
        #expect(misspelled.status == 78)
        #expect(misspelled.standardError.contains("relay.batch_sise: unknown key"))

        let unknownContext = try await ChildProcess.run(
            BuiltProducts.path("outbox-publisher"), ["--context", "shipping", "--config", typo, "--once"])
        #expect(unknownContext.status == 78)
    }

    @Test func onceDrainsThePendingOutbox() async throws {
        let fixture = try await RelayFixture()
        defer { Task { await fixture.tearDown() } }
        let ids = try await fixture.prefill(1200, streams: 10)
        let store = fixture.directory.appendingPathComponent("store.sqlite").path
        let config = try writeConfiguration(
            configuration(brokerURL: TestBroker.url, store: store).replacingOccurrences(of: "sample:", with: "\(fixture.context):"),
            in: fixture.directory)
        let result = try await ChildProcess.run(
            BuiltProducts.path("outbox-publisher"), ["--context", fixture.context, "--config", config, "--once"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(try await fixture.storage.outboxCounts().published == 1200)
        let deliveries = try await fixture.receive(1200)
        let received = Set(deliveries.compactMap(\.properties.messageId))
        #expect(received.symmetricDifference(ids.map { $0.uuidString.lowercased() }).count == 0, "exactly the published events arrive")
    }

    @Test func sigtermDuringALargeBatchExitsCleanlyWithAConsistentOutbox() async throws {
        let fixture = try await RelayFixture()
        defer { Task { await fixture.tearDown() } }
        let ids = try await fixture.prefill(20_000, streams: 50)
        let store = fixture.directory.appendingPathComponent("store.sqlite").path
        let config = try writeConfiguration(
            configuration(brokerURL: TestBroker.url, store: store).replacingOccurrences(of: "sample:", with: "\(fixture.context):"),
            in: fixture.directory)
        let publisher = try ChildProcess.start(BuiltProducts.path("outbox-publisher"), ["--context", fixture.context, "--config", config])
        try await waitUntil(timeout: .seconds(30)) { try await fixture.connection.queueState(fixture.queue).messageCount > 0 }
        publisher.signal(SIGTERM)
        let result = try await publisher.wait()
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.contains("Outbox relay stopped"))

        let counts = try await fixture.storage.outboxCounts()
        #expect(counts.parked == 0)
        #expect(counts.pending + counts.published == 20_000)
        let queued = try await fixture.connection.queueState(fixture.queue).messageCount
        #expect(Int(queued) >= counts.published, "nothing is marked published that the broker does not hold")

        // A second run publishes the rest: every event reaches the queue.
        let rest = try await ChildProcess.run(
            BuiltProducts.path("outbox-publisher"), ["--context", fixture.context, "--config", config, "--once"])
        #expect(rest.status == 0)
        #expect(try await fixture.storage.outboxCounts().published == 20_000)
        let deliveries = try await fixture.receive(20_000, timeout: .seconds(60))
        let missing = Set(ids.map { $0.uuidString.lowercased() }).subtracting(deliveries.compactMap(\.properties.messageId))
        #expect(missing.count == 0, "events missing from the queue")
    }

    /// A publisher killed mid-batch leaves its claimed entries leased, and every later entry of
    /// their streams waits behind them; the publisher that replaces it takes them over when
    /// the short lease (1 s by default, renewed only while a batch is in flight) runs out.
    @Test func aRestartedPublisherTakesOverWhatItsKilledPredecessorClaimedWithinTwoSeconds() async throws {
        let fixture = try await RelayFixture()
        defer { Task { await fixture.tearDown() } }
        _ = try await fixture.prefill(20_000, streams: 50)
        let store = fixture.directory.appendingPathComponent("store.sqlite").path
        let config = try writeConfiguration(
            configuration(brokerURL: TestBroker.url, store: store).replacingOccurrences(of: "sample:", with: "\(fixture.context):"),
            in: fixture.directory)
        let arguments = ["--context", fixture.context, "--config", config]
        let killed = try ChildProcess.start(BuiltProducts.path("outbox-publisher"), arguments)
        try await waitUntil(timeout: .seconds(30)) { try await fixture.storage.outboxCounts().published >= 1000 }
        killed.signal(SIGKILL)
        #expect(try await killed.wait().status == 128 + SIGKILL)
        let atKill = try await fixture.storage.outboxCounts()
        #expect(atKill.pending > 0, "the kill came before the outbox was drained")

        let started = ContinuousClock.now
        let replacement = try ChildProcess.start(BuiltProducts.path("outbox-publisher"), arguments)
        try await waitUntil(timeout: .seconds(30)) { try await fixture.storage.outboxCounts().published > atKill.published }
        let takeover = ContinuousClock.now - started
        #expect(takeover < .seconds(2), "the replacement published again after \(takeover)")
        try await waitUntil(timeout: .seconds(60)) { try await fixture.storage.outboxCounts().pending == 0 }
        replacement.signal(SIGTERM)
        let result = try await replacement.wait()
        #expect(result.status == 0, "\(result.standardError)")
        #expect(try await fixture.storage.outboxCounts().published == 20_000)
    }
}
