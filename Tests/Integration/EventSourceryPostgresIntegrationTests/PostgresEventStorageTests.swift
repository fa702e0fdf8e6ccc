import TestSupport
import EventSourcery
@testable import EventSourceryPostgres
import EventSourceryTesting
import Foundation
import NIOConcurrencyHelpers
import PostgresNIO
import Testing

private typealias F = ConformanceFixtures

private func deposits(_ amounts: [Int]) -> [EventEnvelope] {
    amounts.map { EventEnvelope(F.Deposited(amount: $0)) }
}

/// What the competing claimers saw.
private struct ClaimLedger: Sendable {
    var claims: [Int64: Int] = [:]  // entry id → times claimed
    var publishedUpTo: [StreamID: Int64] = [:]
    var orderViolations: [String] = []
    var claimsPerRelay: [Int] = [0, 0, 0]
}

@Suite("PostgreSQL storage under concurrency", .timeLimit(.minutes(3)), .requiresPostgres)
struct PostgresConcurrencyTests {
    /// Two processes (two pools) race to append at the same expected version, many times.
    @Test func twoWritersRacingOnOneStream() async throws {
        try await TestDatabase.withStorage { storage in
            let other = try await TestDatabase.replicas(of: storage, count: 1)[0]
            defer { Task { await other.shutdown() } }
            let stores = [storage, other].map { EventStore(storage: $0, registry: F.registry) }
            try await stores[0].append(deposits([0]), to: "account-1", expectedVersion: .noStream)
            for round in Int64(1)...20 {
                let outcomes = try await withThrowingTaskGroup(of: EventStoreError?.self) { group in
                    for writer in 0..<2 {
                        group.addTask {
                            do {
                                try await stores[writer].append(deposits([writer]), to: "account-1", expectedVersion: .exact(round))
                                return nil
                            } catch let error as EventStoreError {
                                return error
                            }
                        }
                    }
                    return try await group.reduce(into: [EventStoreError?]()) { $0.append($1) }
                }
                #expect(outcomes.count { $0 == nil } == 1, "exactly one writer wins round \(round)")
                let loser = try #require(outcomes.compactMap { $0 }.first)
                #expect(loser.code == .concurrencyConflict)
                #expect(loser.streamID == "account-1")
                #expect(loser.expectedVersion == .exact(round))
                #expect(loser.actualVersion == round + 1)
            }
            #expect(try await storage.streamVersion("account-1") == 21)
            var all: [RecordedEvent] = []
            try await waitUntil(timeout: .seconds(10)) {
                all = try await storage.readAll(after: 0, limit: 100)
                return all.count >= 21
            }
            #expect(all.count == 21, "a rejected append writes nothing")
            #expect(try await storage.headPosition() == all.last?.position)
            await other.shutdown()
        }
    }

    /// Eight appenders in four processes while a reader pages through the global order:
    /// the reader sees every event exactly once, in position order, and never skips one.
    @Test func readAllIsGapSafeUnderConcurrentAppends() async throws {
        try await TestDatabase.withStorage { storage in
            let writers = try await TestDatabase.replicas(of: storage, count: 4, poolSize: 2)
            let writerCount = 8
            let eventsPerWriter = 250
            let total = writerCount * eventsPerWriter
            let appended = NIOLockedValueBox<Set<UUID>>([])

            let seen = try await withThrowingTaskGroup(of: [RecordedEvent].self) { group in
                for writer in 0..<writerCount {
                    let store = EventStore(storage: writers[writer % writers.count], registry: F.registry)
                    group.addTask {
                        for index in 0..<eventsPerWriter {
                            // Mix single events and small batches, across shared streams.
                            let count = index % 5 == 0 ? 3 : 1
                            let events = deposits(Array(repeating: index, count: count))
                            let stream = try StreamID("account-\((writer + index) % 6)")
                            _ = try await store.append(events, to: stream)
                            appended.withLockedValue { $0.formUnion(events.map(\.id)) }
                        }
                        return []
                    }
                }
                group.addTask {
                    var read: [RecordedEvent] = []
                    var position: Int64 = 0
                    let expected = writerCount * eventsPerWriter * 7 / 5
                    while read.count < expected {
                        let page = try await storage.readAll(after: position, limit: 50)
                        read += page
                        if let last = page.last { position = last.position } else { await Task.yield() }
                    }
                    return read
                }
                return try await group.reduce(into: [RecordedEvent]()) { $0 += $1 }
            }
            let expectedCount = total * 7 / 5
            #expect(seen.count == expectedCount)
            #expect(seen.map(\.position) == seen.map(\.position).sorted(), "in position order")
            #expect(Set(seen.map(\.position)).count == expectedCount, "every position once, none skipped")
            #expect(Set(seen.map(\.event.id)) == appended.withLockedValue { $0 })
            #expect(Set(seen.map(\.event.id)).count == seen.count)
            for writer in writers { await writer.shutdown() }
        }
    }

    /// Writers hold their transactions open for a random time after appending, so commits
    /// land out of position order; a reader pages through the global order and a relay
    /// claims and marks outbox entries meanwhile. The reader sees every position exactly
    /// once and in order, and the relay publishes every entry once, in stream order.
    @Test func readersAndTheRelaySkipNothingWhenCommitsAreDelayed() async throws {
        try await TestDatabase.withStorage(poolSize: 4) { storage in
            let writers = try await TestDatabase.replicas(of: storage, count: 4, poolSize: 3)
            let writerCount = 12
            let batchesPerWriter = 40
            let total = writerCount * batchesPerWriter * 2
            let relayed = NIOLockedValueBox<[Int64: Int]>([:])
            let streamOrder = NIOLockedValueBox<[String: Int64]>([:])
            let violations = NIOLockedValueBox<[String]>([])
            let seen = try await withThrowingTaskGroup(of: [RecordedEvent].self) { group in
                for writer in 0..<writerCount {
                    let storage = writers[writer % writers.count]
                    group.addTask {
                        for index in 0..<batchesPerWriter {
                            var batch = WriteBatch()
                            try batch.publish(deposits([index, index]), to: try StreamID("account-\((writer + index) % 5)"))
                            // As a running storage commits: the notice after the commit.
                            _ = try await storage.inTransaction("append slowly") { connection in
                                let outcome = try await storage.write(batch, on: connection, notifying: false)
                                try await Task.sleep(for: .milliseconds(Int.random(in: 0...15)))
                                return outcome
                            }
                            storage.committedWithoutNotice()
                        }
                        return []
                    }
                }
                group.addTask {  // the relay
                    var published = 0
                    while published < total {
                        let entries = try await storage.claimOutboxEntries(limit: 50, now: Date(), leaseDuration: 60)
                        for entry in entries {
                            relayed.withLockedValue { $0[entry.id, default: 0] += 1 }
                            streamOrder.withLockedValue { last in
                                let previous = last[entry.event.streamID.rawValue] ?? 0
                                if entry.event.streamVersion != previous + 1 {
                                    violations.withLockedValue {
                                        $0.append("\(entry.event.streamID) \(previous) → \(entry.event.streamVersion)")
                                    }
                                }
                                last[entry.event.streamID.rawValue] = entry.event.streamVersion
                            }
                        }
                        try await storage.markPublished(entries.map(\.id), at: Date())
                        published += entries.count
                        if entries.isEmpty { try await Task.sleep(for: .milliseconds(2)) }
                    }
                    return []
                }
                group.addTask {  // the paging reader
                    var read: [RecordedEvent] = []
                    var position: Int64 = 0
                    while read.count < total {
                        let page = try await storage.readAll(after: position, limit: 7)
                        read += page
                        if let last = page.last { position = last.position } else { try await Task.sleep(for: .milliseconds(1)) }
                    }
                    return read
                }
                return try await group.reduce(into: [RecordedEvent]()) { $0 += $1 }
            }
            #expect(seen.count == total)
            #expect(seen.map(\.position) == seen.map(\.position).sorted(), "the reader saw positions in order")
            #expect(Set(seen.map(\.position)).count == total, "every position exactly once")
            #expect(relayed.withLockedValue { $0.count } == total, "the relay published every entry")
            #expect(relayed.withLockedValue { $0.values.allSatisfy { $0 == 1 } }, "no entry twice")
            #expect(violations.withLockedValue { $0 }.isEmpty, "\(violations.withLockedValue { $0.prefix(5) })")
            for writer in writers { await writer.shutdown() }
        }
    }

    /// Three relay replicas drain 10,000 outbox entries of 50 streams.
    @Test func competingClaimersDrainTheOutboxInStreamOrder() async throws {
        try await TestDatabase.withStorage(poolSize: 8) { storage in
            let streamCount = 50
            let rounds = 200
            let store = EventStore(storage: storage, registry: F.registry)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        for round in stride(from: worker, to: rounds, by: 4) {
                            var batch = WriteBatch()
                            for stream in 0..<streamCount {
                                try batch.publish(deposits([round]), to: try StreamID("account-\(stream)"))
                            }
                            try await store.commit(batch)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let total = streamCount * rounds
            #expect(try await storage.outboxCounts().pending == total)

            let ledger = NIOLockedValueBox(ClaimLedger())
            let relays = try await TestDatabase.replicas(of: storage, count: 3, poolSize: 2)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, relay) in relays.enumerated() {
                    group.addTask {
                        var idleRounds = 0
                        while idleRounds < 3 {
                            let entries = try await relay.claimOutboxEntries(limit: 100, now: Date(), leaseDuration: 60)
                            if entries.isEmpty {
                                if try await relay.outboxCounts().pending == 0 { idleRounds += 1 }
                                try await Task.sleep(for: .milliseconds(5))
                                continue
                            }
                            ledger.withLockedValue { ledger in
                                ledger.claimsPerRelay[index] += entries.count
                                var expectedNext: [StreamID: Int64] = [:]
                                for entry in entries {
                                    let stream = entry.event.streamID
                                    ledger.claims[entry.id, default: 0] += 1
                                    let next = expectedNext[stream] ?? (ledger.publishedUpTo[stream] ?? 0) + 1
                                    if entry.event.streamVersion != next {
                                        ledger.orderViolations.append("\(stream): got \(entry.event.streamVersion), expected \(next)")
                                    }
                                    expectedNext[stream] = entry.event.streamVersion + 1
                                }
                                // Recorded before the store is told, so a claimer of the next
                                // entry always finds it here.
                                for (stream, next) in expectedNext { ledger.publishedUpTo[stream] = next - 1 }
                            }
                            try await relay.markPublished(entries.map(\.id), at: Date())
                        }
                    }
                }
                try await group.waitForAll()
            }
            let result = ledger.withLockedValue { $0 }
            #expect(result.claims.count == total, "every entry claimed")
            #expect(result.claims.values.allSatisfy { $0 == 1 }, "no entry handed out twice")
            #expect(result.orderViolations.isEmpty, "\(result.orderViolations.prefix(5))")
            #expect(result.publishedUpTo.count == streamCount)
            #expect(result.publishedUpTo.values.allSatisfy { $0 == Int64(rounds) })
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 0, parked: 0, published: total))
            for relay in relays { await relay.shutdown() }
        }
    }
}

@Suite("PostgreSQL outbox notifications", .timeLimit(.minutes(1)), .requiresPostgres)
struct PostgresNotificationTests {
    /// Whether `stream` yields within `timeout`. Ends the stream (cancelling an
    /// `AsyncStream`'s iterator terminates it), so call it once per stream.
    private func yields(_ stream: AsyncStream<Void>, within timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for await _ in stream { return true }
                return false
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    @Test func publishWakesAStreamListener() async throws {
        try await TestDatabase.withStorage { storage in
            let wakeUps = try await storage.outboxNotifications()
            let writer = try await TestDatabase.replicas(of: storage, count: 1)[0]
            try await EventStore(storage: writer, registry: F.registry).publish(deposits([1]), to: "account-1")
            #expect(await yields(wakeUps, within: .seconds(5)), "the publish's commit woke the listener")
            await writer.shutdown()
        }
    }

    /// `append_events` (migration 6) notifies only when given a channel: appends made while
    /// the storage runs pass none and leave the notice to the storage's sender, after the commit.
    @Test func appendEventsNotifiesOnlyWhenGivenAChannel() async throws {
        try await TestDatabase.withStorage { storage in
            let schema = PostgresEventStorage.quotedIdentifier(storage.configuration.schema)
            func append(notifying channel: String?) async throws {
                _ = try await storage.client.query(
                    """
                    SELECT * FROM \(unescaped: schema).append_events(
                        ARRAY['account-1'], ARRAY[-1]::bigint[], ARRAY[1], ARRAY[\(UUID())], ARRAY['Deposited'], ARRAY[1],
                        ARRAY[now()], ARRAY[''], ARRAY[''], ARRAY['{}'], ARRAY['{"amount": 1}'], ARRAY[true],
                        \(channel)::text, \(storage.configuration.schema))
                    """,
                    logger: TestDatabase.logger
                ).collect()
            }
            let unnotified = try await storage.outboxNotifications()
            try await append(notifying: nil)
            #expect(await yields(unnotified, within: .milliseconds(300)) == false)
            #expect(try await storage.outboxCounts().pending == 1, "the outbox row is there all the same")

            let notified = try await storage.outboxNotifications()
            try await append(notifying: storage.configuration.notificationChannel)
            #expect(await yields(notified, within: .seconds(5)))
        }
    }

    /// Every burst of concurrent publishes through a running storage (notices sent after the
    /// commits, coalesced) wakes the listener of another storage.
    @Test func concurrentPublishesWakeAnotherStoragesListener() async throws {
        try await TestDatabase.withStorage { storage in
            let writer = try await TestDatabase.replicas(of: storage, count: 1, poolSize: 4)[0]
            let store = EventStore(storage: writer, registry: F.registry)
            for round in 0..<5 {
                let wakeUps = try await storage.outboxNotifications()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writerIndex in 0..<8 {
                        group.addTask { try await store.publish(deposits([round]), to: try StreamID("account-\(writerIndex)")) }
                    }
                    try await group.waitForAll()
                }
                #expect(await yields(wakeUps, within: .seconds(5)), "round \(round)")
            }
            #expect(try await storage.outboxCounts().pending == 40)
            await writer.shutdown()
        }
    }

    /// A storage on a pool of the application's whose `run()` does not run has no notice
    /// sender: its commits notify inside their transaction.
    @Test func aStorageThatDoesNotRunNotifiesInItsTransaction() async throws {
        try await TestDatabase.withStorage { storage in
            let client = PostgresClient(configuration: storage.configuration.clientConfiguration)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                let writer = PostgresEventStorage(client: client, configuration: storage.configuration, logger: TestDatabase.logger)
                let wakeUps = try await storage.outboxNotifications()
                try await EventStore(storage: writer, registry: F.registry).publish(deposits([1]), to: "account-1")
                #expect(await yields(wakeUps, within: .seconds(5)))
                group.cancelAll()
            }
        }
    }

    @Test func appendWithoutOutboxRowsDoesNotWake() async throws {
        try await TestDatabase.withStorage { storage in
            let wakeUps = try await storage.outboxNotifications()
            try await EventStore(storage: storage, registry: F.registry).append(deposits([1]), to: "account-1")
            #expect(await yields(wakeUps, within: .milliseconds(300)) == false)
        }
    }

    @Test func anotherSchemasPublishDoesNotWake() async throws {
        try await TestDatabase.withStorage { storage in
            let wakeUps = try await storage.outboxNotifications()
            _ = try await TestDatabase.withStorage { other in
                try await EventStore(storage: other, registry: F.registry).publish(deposits([1]), to: "account-1")
            }
            #expect(await yields(wakeUps, within: .milliseconds(300)) == false)
        }
    }

    /// The protocol's wait, as the outbox relay uses it.
    @Test func waitForOutboxChangeReturnsOnPublish() async throws {
        try await TestDatabase.withStorage { storage in
            // The first call starts the shared listener; nothing happens meanwhile.
            let idleStart = ContinuousClock.now
            await storage.waitForOutboxChange(timeout: .milliseconds(200))
            #expect(ContinuousClock.now - idleStart >= .milliseconds(200))

            let writer = try await TestDatabase.replicas(of: storage, count: 1)[0]
            let waiter = Task {
                let start = ContinuousClock.now
                await storage.waitForOutboxChange(timeout: .seconds(20))
                return ContinuousClock.now - start
            }
            try await Task.sleep(for: .milliseconds(200))
            try await EventStore(storage: writer, registry: F.registry).publish(deposits([1]), to: "account-1")
            let waited = await waiter.value
            #expect(waited < .seconds(5), "woken by the commit, not the timeout (waited \(waited))")

            // Requeueing parked entries wakes waiters too.
            let entry = try #require(try await writer.claimOutboxEntries(limit: 1, now: Date(), leaseDuration: 0).first)
            _ = try await writer.recordFailedAttempt(entry.id, error: "broken", nextAttemptAt: Date(), attemptLimit: 1)
            let requeueWaiter = Task {
                let start = ContinuousClock.now
                await storage.waitForOutboxChange(timeout: .seconds(20))
                return ContinuousClock.now - start
            }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await writer.requeueParked([entry.id]) == 1)
            #expect(await requeueWaiter.value < .seconds(5))
            await writer.shutdown()
        }
    }
}

@Suite("PostgreSQL connection errors", .timeLimit(.minutes(1)), .requiresPostgres)
struct PostgresConnectionErrorTests {
    private func connectError(_ configuration: PostgresEventStorage.Configuration) async -> EventStoreError? {
        do {
            let storage = try await PostgresEventStorage.connect(configuration: configuration)
            await storage.shutdown()
            Issue.record("connected, expected an error")
            return nil
        } catch let error as EventStoreError {
            return error
        } catch {
            Issue.record("expected an EventStoreError, got \(type(of: error)): \(error)")
            return nil
        }
    }

    @Test func wrongPasswordIsStorageUnavailable() async throws {
        var configuration = try TestDatabase.configuration()
        configuration.password = "not-the-password"
        let error = try #require(await connectError(configuration))
        #expect(error.code == .storageUnavailable)
        #expect(error.message.contains("\(configuration.host):\(configuration.port)"))
        #expect(error.message.contains("28P01"))
        #expect(error.message.contains("password"))
        #expect(error.underlying == nil, "no postgres-nio type escapes")
    }

    @Test func missingDatabaseIsStorageUnavailable() async throws {
        var configuration = try TestDatabase.configuration()
        configuration.database = "es_no_such_database"
        let error = try #require(await connectError(configuration))
        #expect(error.code == .storageUnavailable)
        #expect(error.message.contains("es_no_such_database"))
        #expect(error.message.contains("does not exist"))
        #expect(error.message.contains("3D000"))
    }

    @Test func unreachableServerIsStorageUnavailable() async throws {
        var configuration = try TestDatabase.configuration()
        configuration.port = 1  // nothing listens there
        let error = try #require(await connectError(configuration))
        #expect(error.code == .storageUnavailable)
        #expect(error.message.contains("127.0.0.1:1"))
        #expect(error.message.contains("Cannot reach"))
    }

    @Test func callsAfterShutdownAreStorageUnavailable() async throws {
        let configuration = try TestDatabase.configuration()
        let storage = try await TestDatabase.connect(configuration)
        let cleaner = try await TestDatabase.connect(configuration)
        defer { Task { await TestDatabase.drop(cleaner) } }
        await storage.shutdown()
        do {
            _ = try await storage.headPosition()
            Issue.record("expected an error after shutdown")
        } catch let error as EventStoreError {
            #expect(error.code == .storageUnavailable)
        }
    }
}

@Suite("PostgreSQL configuration")
struct PostgresConfigurationTests {
    @Test func parsesAURL() throws {
        let configuration = try PostgresEventStorage.Configuration(
            url: "postgres://ord%40ers:p%3Ass@db.internal:6543/orders?sslmode=require&schema=billing&pool_size=7&connect_timeout=2.5"
        )
        #expect(configuration.username == "ord@ers")
        #expect(configuration.password == "p:ss")
        #expect(configuration.host == "db.internal")
        #expect(configuration.port == 6543)
        #expect(configuration.database == "orders")
        #expect(configuration.tls == .require)
        #expect(configuration.schema == "billing")
        #expect(configuration.maximumConnections == 7)
        #expect(configuration.connectTimeout == .milliseconds(2500))
    }

    @Test func defaults() throws {
        let configuration = try PostgresEventStorage.Configuration(url: "postgresql://app@localhost/app")
        #expect(configuration.port == 5432)
        #expect(configuration.password == nil)
        #expect(configuration.tls == .prefer)
        #expect(configuration.schema == "public")
    }

    @Test(arguments: [
        "mysql://u:p@h/db", "postgres://u:p@h", "postgres://h/db", "postgres://u@h/db?sslmode=sometimes", "not a url",
    ])
    func rejectsInvalidURLs(_ url: String) {
        #expect(throws: EventStoreError.self) { try PostgresEventStorage.Configuration(url: url) }
    }

    @Test func validationNamesTheFieldInsteadOfClamping() async throws {
        var configuration = try PostgresEventStorage.Configuration(url: "postgres://app@localhost/app")
        configuration.maximumConnections = 0
        let pool = #expect(throws: EventStoreError.self) { try configuration.validate() }
        #expect(pool?.code == .invalidArgument)
        #expect(pool?.field == "maximumConnections")
        #expect(pool?.message == "maximumConnections must be positive, got 0")
        let connecting = await #expect(throws: EventStoreError.self) {
            _ = try await PostgresEventStorage.connect(configuration: configuration)
        }
        #expect(connecting?.field == "maximumConnections")
        let port = #expect(throws: EventStoreError.self) { try PostgresEventStorage.Configuration(url: "postgres://app@localhost:0/app") }
        #expect(port?.field == "port")
    }
}
