import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourceryPostgres
import EventSourceryRabbitMQ
import EventSourceryServices
import Foundation
import NIOConcurrencyHelpers
import TestSupport
import Testing

/// The demo flow (coordinated by commands: the order context's fulfilment process manager,
/// its payment deadline long enough that no order times out) at scale on the 3-node
/// cluster: per context three consumer replicas
/// (`demo-service --role consumer`) and two relay replicas (`outbox-publisher`), every store
/// in a PostgreSQL schema of its own, 2,000 orders placed while replicas are SIGKILLed and
/// restarted over and over and, twice, the node leading most inbox partitions is killed
/// (`kill -9`) and started again.
///
/// Asserted from the stores and the broker: every order settles as the gateway decides,
/// exactly once; every consumer applied each source stream's events in stream order and each
/// event once; nothing parked or dead-lettered; the services never killed by the test kept
/// running through both node kills (none needed a restart to reconnect) and stop cleanly.
///
/// Runs with the fault suites, alone, against `AMQP_CLUSTER_URL` (`scripts/rabbitmq
/// cluster-start`); `scripts/test` starts the cluster for it.
@Suite(.serialized, .timeLimit(.minutes(15)), .requiresCluster, .requiresPostgres)
struct ClusterFlowFaultTests {
    static let contexts = ["order", "payment", "invoice"]
    static let orderCount = 2000
    static let consumerReplicas = 3
    static let relayReplicas = 2
    static let declineAbove = DemoContext.defaultDeclineAbove

    /// The amount of order `index`: 1...1300, so about a quarter is declined.
    static func amount(_ index: Int) -> Int { (index * 37) % 1300 + 1 }

    /// A service process the test may kill and start again in its place.
    final class Slot {
        let name: String
        let executable: String
        let arguments: [String]
        let environment: [String: String]
        /// Whether the test kills and restarts it; the others ride out the node kills.
        let isKillable: Bool
        var process: ChildProcess
        var restarts = 0

        init(name: String, executable: String, arguments: [String], environment: [String: String], isKillable: Bool) throws {
            self.name = name
            self.isKillable = isKillable
            self.executable = executable
            self.arguments = arguments
            self.environment = environment
            process = try ChildProcess.start(executable, arguments, environment: environment)
        }

        /// SIGKILLs the process, reaps it and starts a new one.
        func killAndRestart() async throws {
            process.signal(SIGKILL)
            _ = try await process.wait()
            process = try ChildProcess.start(executable, arguments, environment: environment)
            restarts += 1
        }

        /// Whether the process still runs (exists and is no zombie), without reaping it.
        var isRunning: Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(process.pid)/stat", encoding: .utf8) else { return false }
            // The state follows the parenthesised command name: "<pid> (<comm>) <state> …".
            return stat.split(separator: ")").last?.split(separator: " ").first != "Z"
        }
    }

    /// Runs `rabbitmqctl` on the first cluster node that answers.
    private func clusterControl(_ arguments: String...) async throws -> String {
        var lastError: (any Error)?
        for node in 1...3 {
            do {
                return try await TestBroker.run(
                    "/bin/bash",
                    [TestRepository.root.appendingPathComponent("scripts/rabbitmq").path, "cluster-ctl", "\(node)"] + arguments)
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    /// Whether every quorum queue of the vhost has each of its members running: a node that
    /// was restarted is up before its members have started and caught up, and killing
    /// another node meanwhile leaves queues without a majority (the broker then refuses
    /// their publishes until the members are back).
    private func quorumQueuesFullyOnline() async throws -> Bool {
        let listing = try await clusterControl("list_queues", "name", "type", "members", "online", "--quiet", "--no-table-headers")
        func nodes(_ field: Substring) -> Set<String> {
            Set(
                field.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces)
                })
        }
        for line in listing.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 4, fields[1] == "quorum" else { continue }
            if nodes(fields[2]) != nodes(fields[3]) { return false }
        }
        return true
    }

    /// The AMQP port of the node that leads most of the contexts' inbox partitions.
    private func portOfBusiestLeader(endpoints: [AMQPConnection.Configuration.Endpoint], queues: Set<String>) async throws -> Int {
        let listing = try await clusterControl("list_queues", "name", "leader", "--quiet", "--no-table-headers")
        var led: [String: Int] = [:]
        for line in listing.split(separator: "\n") {
            let fields = line.split(whereSeparator: \.isWhitespace).map(String.init)
            guard fields.count == 2, queues.contains(fields[0]) else { continue }
            led[fields[1], default: 0] += 1
        }
        let leader = try #require(led.max { $0.value < $1.value }?.key, "no leader in \(listing)")
        // Nodes es1…es3 listen on the endpoints in order.
        let index = try #require(Int(leader.prefix { $0 != "@" }.dropFirst(2)), "node \(leader)")
        return endpoints[index - 1].port
    }

    @Test func twoThousandOrdersSettleExactlyOnceInOrderWhileReplicasAndNodesAreKilled() async throws {
        let clusterURL = try #require(TestCluster.url)
        let endpoints = try AMQPConnection.Configuration(url: clusterURL).endpoints
        #expect(endpoints.count == 3)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cluster-flow-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        var storages: [String: PostgresEventStorage] = [:]
        var storeURLs: [String: String] = [:]
        for context in Self.contexts {
            let schema = TestDatabase.freshSchemaName()
            storages[context] = try await TestDatabase.connect(try TestDatabase.configuration(schema: schema))
            storeURLs[context] = TestDatabase.url + "?schema=\(schema)"
        }
        defer {
            let storages = storages
            Task { for storage in storages.values { await TestDatabase.drop(storage) } }
        }
        let stores = storages.mapValues { EventStore(storage: $0, registry: EventRegistry(DemoContext.eventTypes)) }
        let order = try #require(stores["order"])

        let configPath = directory.appendingPathComponent("eventsourcery.yaml").path
        try DemoConfiguration.yaml(
            brokerURL: clusterURL, directory: directory, broker: ["heartbeat_seconds: 5"], stores: storeURLs,
            consumer: ["prefetch: 100", "delivery_limit: 20"], paymentTimeout: 600  // no order times out while nodes go
        ).write(toFile: configPath, atomically: true, encoding: .utf8)
        let topologies = try ServiceConfiguration.load(path: configPath, environment: [:]).topologies
        let connection = try await TestBroker.freshTopology(topologies, url: clusterURL)
        let partitions = Set(topologies.flatMap(\.inboxQueues))
        #expect(partitions.count == Self.contexts.count * ServiceConfiguration.defaultPartitions)

        let environment = ["AMQP_URL": clusterURL, "LOG_LEVEL": "warning"]
        var consumers: [Slot] = []
        var relays: [Slot] = []
        for context in Self.contexts {
            let arguments = ["--context", context, "--config", configPath]
            for replica in 1...Self.consumerReplicas {
                consumers.append(
                    try Slot(
                        name: "demo-service \(context) \(replica)", executable: BuiltProducts.path("demo-service"),
                        arguments: arguments + ["--role", "consumer", "--decline-above", "\(Self.declineAbove)"], environment: environment,
                        isKillable: replica < Self.consumerReplicas))
            }
            for replica in 1...Self.relayReplicas {
                relays.append(
                    try Slot(
                        name: "outbox-publisher \(context) \(replica)", executable: BuiltProducts.path("outbox-publisher"),
                        arguments: arguments, environment: environment, isKillable: replica < Self.relayReplicas))
            }
        }
        let slots = consumers + relays
        let killable = slots.filter(\.isKillable)
        var stopped = false
        defer {
            if !stopped {
                for slot in slots { slot.process.signal(SIGKILL) }
                for slot in slots { _ = waitpid(slot.process.pid, nil, 0) }
            }
            Task { await connection.close() }
        }

        // Orders are placed one after another while, every 1.5 s, a replica is SIGKILLed and
        // restarted (by turns; the last consumer and relay replica of each context never), and when a sixth and when half of the
        // orders are placed the node leading most inbox partitions is killed, then started
        // again.
        let started = ContinuousClock.now
        let placedCount = NIOLockedValueBox(0)
        let nodeKillsDue = [Self.orderCount / 6, Self.orderCount / 2]
        let nodeKillsDone = NIOLockedValueBox(0)
        let placing = Task {
            for index in 0..<Self.orderCount {
                // At each node kill's mark, placing waits until that node is killed: both kills
                // happen while orders flow, however long a node takes to start again.
                if let kill = nodeKillsDue.firstIndex(of: index) {
                    while nodeKillsDone.withLockedValue({ $0 }) <= kill { try await Task.sleep(for: .milliseconds(100)) }
                }
                try await DemoContext.placeOrder("o\(index)", amount: Self.amount(index), in: order)
                placedCount.withLockedValue { $0 = index + 1 }
            }
        }
        func settledCount() async throws -> Int {
            try await order.orderStates().values.filter { $0 == .completed || $0 == .cancelled }.count
        }
        var nodeKills: [(port: Int, recovery: Duration?)] = []
        // The killed node starts again in the background; the next node kill waits for it, so
        // two nodes of three (a quorum) always run.
        var restarting: Task<Void, any Error>?
        let nodeDown = NIOLockedValueBox(false)
        var killRound = 0
        while placedCount.withLockedValue({ $0 }) < Self.orderCount {
            try await Task.sleep(for: .milliseconds(1500))
            if nodeKills.count < nodeKillsDue.count, placedCount.withLockedValue({ $0 }) >= nodeKillsDue[nodeKills.count],
                !nodeDown.withLockedValue({ $0 })
            {
                try await restarting?.value
                try await waitUntil(timeout: .seconds(60)) { try await quorumQueuesFullyOnline() }
                let port = try await portOfBusiestLeader(endpoints: endpoints, queues: partitions)
                let settledBefore = try await settledCount()
                let killedAt = ContinuousClock.now
                nodeDown.withLockedValue { $0 = true }
                try await TestCluster.script("cluster-kill", "\(port)")
                nodeKillsDone.withLockedValue { $0 += 1 }
                // Working again: more orders settled than when the node went (placing goes on
                // once the node is killed).
                var recovery: Duration?
                while ContinuousClock.now - killedAt < .seconds(60) {
                    if try await settledCount() > settledBefore {
                        recovery = ContinuousClock.now - killedAt
                        break
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                nodeKills.append((port, recovery))
                restarting = Task {
                    try await TestCluster.script("cluster-start")
                    nodeDown.withLockedValue { $0 = false }
                }
            }
            let slot = killable[killRound % killable.count]
            killRound += 1
            try await slot.killAndRestart()
        }
        try await restarting?.value
        try await placing.value
        let placed = ContinuousClock.now - started

        var states: [String: DemoContext.OrderState] = [:]
        func settled() -> Bool {
            states.count == Self.orderCount && states.values.allSatisfy { $0 == .completed || $0 == .cancelled }
        }
        let deadline = ContinuousClock.now + .seconds(300)
        while ContinuousClock.now < deadline {
            states = try await order.orderStates()
            if settled() { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        let settling = ContinuousClock.now - started
        // Late deliveries (already applied) are no-ops; let the inboxes drain before stopping.
        try? await waitUntil(timeout: .seconds(60)) {
            var pending = 0
            for queue in partitions { pending += Int(try await connection.queueState(queue).messageCount) }
            return pending == 0
        }

        // The services never killed by the test kept running through both node kills.
        let untouched = slots.filter { !$0.isKillable }
        for slot in untouched { #expect(slot.isRunning, "\(slot.name) exited: \(slot.process.standardErrorSoFar.suffix(2000))") }
        stopped = true
        for slot in slots { slot.process.signal(SIGTERM) }
        for slot in slots {
            let result = try await slot.process.wait()
            #expect(result.status == 0, "\(slot.name) exited with \(result.status): \(result.standardError.suffix(2000))")
        }
        print(
            "ClusterFlowFaultTests: \(Self.orderCount) orders placed in \(placed), settled after \(settling); \(killRound) replica kills; node kills \(nodeKills.map { "port \($0.port): working again after \($0.recovery.map { "\($0)" } ?? "more than 60 s")" }); \(untouched.count) services never killed"
        )
        #expect(nodeKills.count == 2)
        for kill in nodeKills {
            #expect(kill.recovery != nil, "the flow did not resume within 60 s after the node on \(kill.port) was killed")
        }

        // Every order completed or cancelled, as the gateway decided.
        #expect(settled(), "unsettled: \(states.filter { $0.value != .completed && $0.value != .cancelled }.prefix(10))")
        for index in 0..<Self.orderCount {
            let expected: DemoContext.OrderState = Self.amount(index) > Self.declineAbove ? .cancelled : .completed
            #expect(states["o\(index)"] == expected, "order o\(index) of \(Self.amount(index))")
        }
        var events: [String: [StoredEvent]] = [:]
        for (context, store) in stores { events[context] = try await store.allEvents() }
        let payments = events["payment", default: []].compactMap { $0.envelope.as(PaymentSucceeded.self) }
        let issued = events["invoice", default: []].compactMap { $0.envelope.as(InvoiceIssued.self) }
        let completed = states.values.filter { $0 == .completed }.count
        #expect(payments.count == completed && Set(payments.map(\.orderID)).count == payments.count, "one payment per completed order")
        #expect(issued.map(\.invoiceNumber).sorted() == (0..<issued.count).map { $0 + 1 }, "invoice numbers 1...n without gaps")
        #expect(issued.count == completed)

        // Each consumer applied every source event once, and each source stream's events in
        // stream order: the events a handler appended name their cause, whose stream and
        // version the source store holds.
        var sources: [UUID: (context: String, stream: String, version: Int64)] = [:]
        for (context, list) in events {
            for event in list { sources[event.envelope.id] = (context, event.streamID.rawValue, event.streamVersion) }
        }
        for (context, list) in events {
            var last: [String: (cause: UUID, version: Int64)] = [:]
            var applied: Set<String> = []
            for event in list where !(event.event is HandlerFailed) {
                guard let cause = event.envelope.metadata.causationID, let source = sources[cause], source.context != context else {
                    continue
                }
                #expect(applied.insert("\(cause) \(event.envelope.typeName)").inserted, "\(context) applied \(cause) twice")
                // A handler may append several events for one cause; they share its version.
                let key = "\(source.context)/\(source.stream)"
                if let previous = last[key] {
                    guard previous.cause != cause else { continue }
                    #expect(source.version > previous.version, "\(context) applied \(key) v\(source.version) after v\(previous.version)")
                }
                last[key] = (cause, source.version)
            }
        }

        // Nothing parked, nothing dead-lettered, nothing left behind.
        for (context, store) in stores {
            #expect(try await store.storage.outboxCounts().parked == 0, "\(context) parked outbox entries")
            #expect(try await ContextAdmin.parkedSequences(context: context, store: store).isEmpty, "\(context) parked sequences")
        }
        for topology in topologies {
            #expect(try await connection.queueState(topology.deadLetterQueue).messageCount == 0, "\(topology.deadLetterQueue)")
            for queue in topology.inboxQueues + [CommandMessage.queue(for: topology.context)] {
                #expect(try await connection.queueState(queue).messageCount == 0, "\(queue)")
            }
        }
    }
}
