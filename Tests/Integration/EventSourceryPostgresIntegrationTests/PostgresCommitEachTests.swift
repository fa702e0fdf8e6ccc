import TestSupport
import EventSourcery
@testable import EventSourceryPostgres
import EventSourceryTesting
import Foundation
import Logging
import PostgresNIO
import Testing

private typealias F = ConformanceFixtures

/// `commitEach` on PostgreSQL: a consumer's batches through one call of `commit_each`
/// (migrations 7 and 8), other sets batch by batch after savepoints, and the pool's start.
@Suite("PostgreSQL commitEach", .timeLimit(.minutes(2)), .requiresPostgres)
struct PostgresCommitEachTests {
    private func batch(
        _ amount: Int, to stream: StreamID, expecting version: ExpectedVersion = .any, inbox eventID: UUID? = UUID()
    ) throws -> WriteBatch {
        var batch = WriteBatch()
        try batch.publish([EventEnvelope(F.Deposited(amount: amount))], to: stream, expectedVersion: version)
        batch.inboxEntry = eventID.map { InboxEntry(consumer: "ledger.deposit", eventID: $0) }
        return batch
    }

    /// How many (sub)transactions wrote the events at `positions` (their distinct `xmin`s): one
    /// for the set-based path, one per batch for the batch-by-batch blocks.
    private func writers(of positions: [Int64], in storage: PostgresEventStorage) async throws -> Int32 {
        let rows = try await storage.rows(
            """
            SELECT count(DISTINCT xmin::text)::integer FROM \(unescaped: storage.schema).events
            WHERE position = ANY(\(positions)::bigint[])
            """,
            "count the events' writers")
        return try rows[0].decode(Int32.self)
    }

    private func isCommitted(_ result: Result<CommitOutcome, any Error>) -> Bool {
        if case .success(.committed) = result { true } else { false }
    }

    /// Each failing batch of the one call gets the error `append_events` would have given it,
    /// alone (the set-based path fails as a whole, and the batches are written one by one): a version conflict with the stream's actual version, and a payload PostgreSQL
    /// rejects as JSON; their inbox entries are not kept, the other batches commit in order.
    @Test func eachBatchOfOneCallFailsOrCommitsAlone() async throws {
        try await TestDatabase.withStorage { storage in
            let store = EventStore(storage: storage, registry: F.registry)
            try await store.append([EventEnvelope(F.Deposited(amount: 0))], to: "account-1")
            var notJSON = WriteBatch()
            notJSON.append(
                encoded: [
                    EncodedEvent(
                        id: UUID(), typeName: "Deposited", schemaVersion: 1, createdAt: Date(), metadata: EventMetadata(),
                        payload: Data("{not json".utf8))
                ], to: "account-3", expectedVersion: .any, publishes: false)
            notJSON.inboxEntry = InboxEntry(consumer: "ledger.deposit", eventID: UUID())
            let batches = [
                try batch(1, to: "account-1", expecting: .exact(1)),
                try batch(2, to: "account-1", expecting: .exact(1)),  // loses to the first
                notJSON,
                try batch(3, to: "account-2", inbox: nil),
                try batch(4, to: "account-1"),
            ]
            let results = await storage.commitEach(batches)
            #expect(results.count == 5)
            guard results.count == 5 else { return }
            let committed = results.compactMap { try? $0.get() }.flatMap { outcome -> [RecordedEvent] in
                if case .committed(let events) = outcome { events } else { [] }
            }
            #expect(committed.map(\.streamVersion) == [2, 1, 3])
            #expect(committed.map(\.streamID) == ["account-1", "account-2", "account-1"])
            #expect(committed.map(\.position) == committed.map(\.position).sorted())
            #expect(try await writers(of: committed.map(\.position), in: storage) == 3)  // a block per batch
            if case .failure(let error as EventStoreError) = results[1] {
                #expect(error.code == .concurrencyConflict)
                #expect(error.actualVersion == 2)
                #expect(error.isTransactionOrderConflict == false)
            } else {
                Issue.record("expected a concurrency conflict, got \(results[1])")
            }
            if case .failure(let error as EventStoreError) = results[2] {
                #expect(error.code == .unencodableEvent)
            } else {
                Issue.record("expected an unencodable event, got \(results[2])")
            }
            #expect(try await storage.isProcessed(consumer: "ledger.deposit", eventID: batches[0].inboxEntry!.eventID))
            #expect(try await storage.isProcessed(consumer: "ledger.deposit", eventID: batches[1].inboxEntry!.eventID) == false)
            #expect(try await storage.isProcessed(consumer: "ledger.deposit", eventID: notJSON.inboxEntry!.eventID) == false)
            #expect(try await storage.streamVersion("account-3") == 0)
            #expect(try await storage.outboxCounts().pending == 3)

            // The same entries again: already processed, nothing written.
            let again = await storage.commitEach([batches[0], batches[4]])
            for result in again {
                if case .success(.alreadyProcessed) = result {} else { Issue.record("expected alreadyProcessed, got \(result)") }
            }
            #expect(try await storage.streamVersion("account-1") == 3)
        }
    }

    /// When every batch can commit, `commit_each` writes them together (migration 8's
    /// set-based path) exactly as batch-by-batch calls of `append_events` would: a processed
    /// batch writes nothing, appends to one stream get consecutive versions in the batches'
    /// order, and all positions belong to this transaction's id (`position >> 20`, gap-safe),
    /// newer than an earlier commit's and older than a later one's, consecutive and in the
    /// batches' order; the streams' versions, the outbox and the inbox follow.
    @Test func batchesThatAllCommitAreWrittenTogetherWithGapSafePositions() async throws {
        try await TestDatabase.withStorage { storage in
            let store = EventStore(storage: storage, registry: F.registry)
            try await store.append([EventEnvelope(F.Deposited(amount: 0))], to: "account-1")
            let processed = try batch(9, to: "account-9")
            guard case .success(.committed(let earlier)) = await storage.commitEach([processed])[0] else {
                Issue.record("the first batch did not commit")
                return
            }
            let batches = [
                try batch(1, to: "account-1", expecting: .exact(1)),
                processed,
                try batch(2, to: "account-1", expecting: .exact(2)),  // after the first, in the same call
                try batch(3, to: "account-2", expecting: .noStream, inbox: nil),
                try batch(4, to: "account-1"),
            ]
            let results = await storage.commitEach(batches)
            #expect(results.count == 5)
            guard results.count == 5 else { return }
            if case .success(.alreadyProcessed) = results[1] {} else { Issue.record("expected alreadyProcessed, got \(results[1])") }
            let committed = results.compactMap { try? $0.get() }.flatMap { outcome -> [RecordedEvent] in
                if case .committed(let events) = outcome { events } else { [] }
            }
            #expect(committed.map(\.streamID) == ["account-1", "account-1", "account-2", "account-1"])
            #expect(committed.map(\.streamVersion) == [2, 3, 1, 4])
            let positions = committed.map(\.position)
            #expect(Set(positions.map { $0 >> 20 }).count == 1)
            #expect(positions.first! >> 20 > earlier[0].position >> 20)
            #expect(zip(positions, positions.dropFirst()).allSatisfy { $1 == $0 + 1 })
            #expect(try await writers(of: positions, in: storage) == 1)  // the set-based path
            guard case .committed(let later) = try await storage.commit(try batch(5, to: "account-3", inbox: nil)) else {
                Issue.record("the later batch did not commit")
                return
            }
            #expect(later[0].position >> 20 > positions[0] >> 20)
            #expect(try await storage.streamVersion("account-1") == 4)
            #expect(try await storage.streamVersion("account-2") == 1)
            #expect(try await storage.streamVersion("account-9") == 1)
            #expect(try await storage.outboxCounts().pending == 6)
            for (index, batch) in batches.enumerated() where index != 3 {
                #expect(try await storage.isProcessed(consumer: "ledger.deposit", eventID: batch.inboxEntry!.eventID))
            }
        }
    }

    /// Calls that append to the same streams at once wait for each other's stream locks
    /// before their transactions get ids (migration 8), so none loses a stream to a newer
    /// transaction (`ES002`): every batch commits, and each stream's versions run 1…n in
    /// position order.
    @Test func concurrentCallsOnTheSameStreamsAllCommitInOrder() async throws {
        try await TestDatabase.withStorage { storage in
            let streams: [StreamID] = ["shared-0", "shared-1", "shared-2"]
            let failures = try await withThrowingTaskGroup(of: Int.self) { group in
                for caller in 0..<4 {
                    group.addTask {
                        var failed = 0
                        for call in 0..<10 {
                            let batches = try (0..<5).map { index in
                                try batch(caller * 100 + call * 5 + index, to: streams[(caller + index) % streams.count])
                            }
                            failed += await storage.commitEach(batches).filter { !isCommitted($0) }.count
                        }
                        return failed
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(failures == 0)
            var total = 0
            for stream in streams {
                let events = try await storage.readStream(stream, fromVersion: 1, upToVersion: nil, createdUpTo: nil)
                #expect(events.map(\.streamVersion) == (0..<Int64(events.count)).map { $0 + 1 })
                #expect(events.map(\.position) == events.map(\.position).sorted())
                total += events.count
            }
            #expect(total == 200)
        }
    }

    /// A set with a command takes the savepoint path: the batch whose command id is taken
    /// fails alone, the others commit with their inbox entries.
    @Test func aSetWithCommandsIsWrittenAfterSavepoints() async throws {
        try await TestDatabase.withStorage { storage in
            let commandID = UUID()
            var first = try batch(1, to: "account-1")
            try first.send(CommandEnvelope(F.SendStatement(account: "1"), id: commandID), to: "statements")
            var duplicate = try batch(2, to: "account-2")
            try duplicate.send(CommandEnvelope(F.SendStatement(account: "2"), id: commandID), to: "statements")
            let plain = try batch(3, to: "account-3")
            let results = await storage.commitEach([first, duplicate, plain])
            #expect(isCommitted(results[0]))
            if case .failure(let error as EventStoreError) = results[1] {
                #expect(error.code == .duplicateEventID)
            } else {
                Issue.record("expected a duplicate command, got \(results[1])")
            }
            #expect(isCommitted(results[2]))
            #expect(try await storage.isProcessed(consumer: "ledger.deposit", eventID: duplicate.inboxEntry!.eventID) == false)
            #expect(try await storage.streamVersion("account-2") == 0)
            #expect(try await storage.commandOutboxEntries(in: [.pending], limit: 10).map(\.command.id) == [commandID])
        }
    }

    /// Queries made before and right after `run()` starts wait for the pool and then succeed.
    /// (postgres-nio's warning that `PostgresClient.run()` was not called is not asserted
    /// away: the storage signals the pool's start just before it calls `run()`, and a query
    /// woken on another thread can, rarely, lease a connection in between; the lease then
    /// still waits for the pool.)
    @Test func queriesMadeBeforeRunWaitForThePool() async throws {
        let configuration = try TestDatabase.configuration()
        for _ in 0..<10 {
            let storage = try await PostgresEventStorage.connect(configuration: configuration)
            let early = Task { try await storage.headPosition() }  // asked before run() starts
            let heads = try await storage.withRunning { [try await storage.headPosition(), try await early.value] }
            #expect(heads == [0, 0])
        }
        let storage = try await TestDatabase.connect(configuration)
        await TestDatabase.drop(storage)
    }
}
