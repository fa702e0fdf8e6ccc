import EventSourcery
import EventSourcerySQLite
import EventSourceryTesting
import Foundation
import Testing

private typealias F = ConformanceFixtures

/// Two storages on one file stand for two processes: each has its own connections, and a
/// commit through one reaches the other only through the file.
@Suite("SQLite wake-ups across storages", .timeLimit(.minutes(1)))
struct SQLiteCommitWatchTests {
    private func storage(at path: String, watching: Bool = true, poll: Duration = .seconds(60)) throws -> SQLiteEventStorage {
        var configuration = SQLiteEventStorage.Configuration(path: path)
        configuration.watchesOtherProcesses = watching
        configuration.crossProcessPollInterval = poll
        return try SQLiteEventStorage(configuration: configuration)
    }

    private func publishOne(through storage: SQLiteEventStorage, stream: String) async throws {
        let store = EventStore(storage: storage, registry: F.registry)
        try await store.publish([EventEnvelope(F.Deposited(amount: 1))], to: StreamID(stream), expectedVersion: .any)
    }

    /// A writer and a relay storage on one new file; the relay has claimed once (which starts
    /// its watcher and marks its change signal, so the writer's commit cannot slip in before
    /// the wait). Returns why the relay's wait ended after the writer published one event.
    private func relayWake(watching: Bool, poll: Duration) async throws -> (wake: OutboxWake, relay: SQLiteEventStorage) {
        try await withTemporaryDirectory { directory in
            let path = directory.database()
            let writer = try storage(at: path)
            let relay = try storage(at: path, watching: watching, poll: poll)
            defer { try? writer.close() }
            #expect(try await relay.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30).isEmpty)
            // The timeout is a minute: a wake before it is the notification or the poll.
            let waiting = Task { await relay.waitForOutboxChangeReason(timeout: .seconds(60)) }
            try await publishOne(through: writer, stream: "account-1")
            let wake = await waiting.value
            // The relay's claim waits for the writer's commit if the notification came first.
            let due = try await relay.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30)
            #expect(due.map(\.event.streamID) == ["account-1"])
            try relay.close()
            return (wake, relay)
        }
    }

    @Test("a commit by another storage wakes a waiting relay by notification, without the poll")
    func notifiedAcrossStorages() async throws {
        // The poll interval is a minute too: only the notification can end the wait.
        let (wake, relay) = try await relayWake(watching: true, poll: .seconds(60))
        #expect(wake == .notified)
        #expect(relay.crossProcessNotificationCount >= 1)
    }

    @Test("without the watcher, the fallback poll finds the other storage's commit")
    func polledWithoutWatcher() async throws {
        let (wake, relay) = try await relayWake(watching: false, poll: .milliseconds(10))
        #expect(wake == .polled)
        #expect(relay.crossProcessNotificationCount == 0)
    }

    @Test("a commit between the relay's claim and its wait is not missed")
    func commitBeforeTheWait() async throws {
        try await withTemporaryDirectory { directory in
            let relay = try storage(at: directory.database(), watching: false)
            defer { try? relay.close() }
            #expect(try await relay.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30).isEmpty)
            try await publishOne(through: relay, stream: "account-1")
            #expect(await relay.waitForOutboxChangeReason(timeout: .seconds(60)) == .signalled)
            // The mark is used once: with nothing new, the next wait runs to its timeout.
            #expect(await relay.waitForOutboxChangeReason(timeout: .milliseconds(30)) == .timedOut)
        }
    }

    @Test("commits to another database of the same directory wake no relay")
    func otherDatabasesOfTheDirectory() async throws {
        try await withTemporaryDirectory { directory in
            let relay = try storage(at: directory.database("order.sqlite"))
            let neighbour = try storage(at: directory.database("payment.sqlite"))
            defer {
                try? relay.close()
                try? neighbour.close()
            }
            #expect(try await relay.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30).isEmpty)
            for index in 1...5 { try await publishOne(through: neighbour, stream: "account-\(index)") }
            #expect(await relay.waitForOutboxChangeReason(timeout: .milliseconds(50)) == .timedOut)
            #expect(relay.crossProcessNotificationCount == 0)
            // Its own file's commits still do.
            let writer = try storage(at: directory.database("order.sqlite"))
            defer { try? writer.close() }
            #expect(try await relay.claimOutboxEntries(limit: 10, now: Date(), leaseDuration: 30).isEmpty)
            let waiting = Task { await relay.waitForOutboxChangeReason(timeout: .seconds(60)) }
            try await publishOne(through: writer, stream: "account-1")
            #expect(await waiting.value == .notified)
        }
    }
}
