import EventSourcery
import Foundation
import NIOConcurrencyHelpers
import Testing

private typealias F = ConformanceFixtures

/// A date with whole milliseconds, which every backend stores exactly.
private func date(_ secondsSince1970: Double) -> Date {
    Date(timeIntervalSince1970: (secondsSince1970 * 1000).rounded() / 1000)
}

private func expectSameInstant(_ a: Date, _ b: Date, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(abs(a.timeIntervalSince(b)) < 0.000_01, "\(a) != \(b)", sourceLocation: sourceLocation)
}

private func deposits(_ amounts: [Int], metadata: EventMetadata = EventMetadata()) -> [EventEnvelope] {
    amounts.map { EventEnvelope(F.Deposited(amount: $0), metadata: metadata) }
}

/// Runs `body` and returns the ``EventStoreError`` it throws, recording an issue when it throws none.
private func storeError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async -> EventStoreError? {
    do {
        try await body()
        Issue.record("expected an EventStoreError, nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as EventStoreError {
        return error
    } catch {
        Issue.record("expected an EventStoreError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension EventStorageConformance {
    struct Checks {
        let storage: any EventStorage
        let store: EventStore

        /// Where each position is in the global order, counting from 1. Backends promise
        /// increasing positions, not dense ones (PostgreSQL derives them from transaction ids),
        /// so the checks compare places in the order rather than position numbers.
        private func ordinals(_ positions: [Int64]) async throws -> [Int] {
            let deadline = ContinuousClock.now + .seconds(10)
            var all: [Int64] = []
            repeat {
                if !all.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
                all = try await store.readAllRecorded(after: 0, limit: 100_000).map(\.position)
            } while !Set(all).isSuperset(of: positions) && ContinuousClock.now < deadline
            return positions.map { position in (all.firstIndex(of: position) ?? -1) + 1 }
        }

        /// The positions readers of the global order see, once there are at least `count`.
        /// A backend may show a committed event to readers a moment later (PostgreSQL: once
        /// every older transaction has ended), never out of order; gives up after 10 s.
        private func visiblePositions(atLeast count: Int) async throws -> [Int64] {
            let deadline = ContinuousClock.now + .seconds(10)
            while true {
                let all = try await store.readAllRecorded(after: 0, limit: 100_000).map(\.position)
                if all.count >= count || ContinuousClock.now >= deadline { return all }
                try await Task.sleep(for: .milliseconds(5))
            }
        }

        /// Checks that readers see `count` events and that the head position is the last.
        private func expectHead(atCount count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let all = try await visiblePositions(atLeast: count)
            #expect(all.count == count, sourceLocation: sourceLocation)
            #expect(try await storage.headPosition() == all.last ?? 0, sourceLocation: sourceLocation)
        }

        /// Lists the outbox entries due at `now` without leasing them.
        private func due(limit: Int, at now: Date) async throws -> [OutboxEntry] {
            try await storage.claimOutboxEntries(limit: limit, now: now, leaseDuration: 0)
        }

        // MARK: Streams

        func appendAndLoadRoundTrip() async throws {
            let correlation = UUID()
            let cause = UUID()
            let metadata = EventMetadata(correlationID: correlation, causationID: cause, traceContext: ["traceparent": "00-abc-def-01"])
            let first = EventEnvelope(F.AccountOpened(owner: "Zoë ✓"), createdAt: date(1_700_000_000.123), metadata: metadata)
            let second = EventEnvelope(F.Deposited(amount: 42), createdAt: date(1_700_000_001.5))
            let stored = try await store.append([first, second], to: "account-1", expectedVersion: .noStream)
            #expect(stored.map(\.streamVersion) == [1, 2])
            #expect(try await ordinals(stored.map(\.position)) == [1, 2])

            let loaded = try await store.load("account-1")
            #expect(loaded.count == 2)
            #expect(loaded.map(\.envelope.id) == [first.id, second.id])
            #expect(loaded.map(\.streamVersion) == [1, 2])
            #expect(loaded.map(\.streamID) == ["account-1", "account-1"])
            #expect(loaded[0].envelope.as(F.AccountOpened.self) == F.AccountOpened(owner: "Zoë ✓"))
            #expect(loaded[1].envelope.as(F.Deposited.self) == F.Deposited(amount: 42))
            #expect(loaded[0].envelope.metadata == metadata)
            #expect(loaded[1].envelope.metadata.correlationID == second.id, "an event without correlation starts its own flow")
            #expect(loaded[1].envelope.metadata.causationID == nil)
            expectSameInstant(loaded[0].envelope.createdAt, first.createdAt)
            expectSameInstant(loaded[1].envelope.createdAt, second.createdAt)

            let raw = try await storage.readStream("account-1", fromVersion: 1, upToVersion: nil, createdUpTo: nil)
            #expect(raw.map(\.event.typeName) == ["AccountOpened", "Deposited"])
            #expect(raw.map(\.event.schemaVersion) == [1, 1])
            #expect(try JSONDecoder().decode(F.Deposited.self, from: raw[1].event.payload) == F.Deposited(amount: 42))
            #expect(try await store.load("account-2").isEmpty)
        }

        func optimisticConcurrency() async throws {
            try await store.append(deposits([1]), to: "account-1", expectedVersion: .noStream)
            let noStream = await storeError { try await store.append(deposits([2]), to: "account-1", expectedVersion: .noStream) }
            #expect(noStream?.code == .concurrencyConflict)
            #expect(noStream?.streamID == "account-1")
            #expect(noStream?.expectedVersion == .noStream)
            #expect(noStream?.actualVersion == 1)

            try await store.append(deposits([2, 3]), to: "account-1", expectedVersion: .exact(1))
            let stale = await storeError { try await store.append(deposits([4]), to: "account-1", expectedVersion: .exact(1)) }
            #expect(stale?.code == .concurrencyConflict)
            #expect(stale?.expectedVersion == .exact(1))
            #expect(stale?.actualVersion == 3)

            let missing = await storeError { try await store.append(deposits([5]), to: "account-9", expectedVersion: .exact(2)) }
            #expect(missing?.actualVersion == 0)

            try await store.append(deposits([6]), to: "account-1", expectedVersion: .any)
            try await store.append(deposits([7]), to: "account-9", expectedVersion: .any)
            let amounts = try await store.load("account-1").compactMap { $0.envelope.as(F.Deposited.self)?.amount }
            #expect(amounts == [1, 2, 3, 6], "rejected appends wrote nothing")
            try await expectHead(atCount: 5)
        }

        func batchIsAtomicAcrossStreams() async throws {
            try await store.append(deposits([1]), to: "account-2")
            var batch = WriteBatch()
            try batch.publish(deposits([10]), to: "account-1", expectedVersion: .noStream)
            try batch.append(deposits([20]), to: "account-2", expectedVersion: .noStream)
            batch.inboxEntry = InboxEntry(consumer: "c", eventID: UUID())
            let error = await storeError { try await store.commit(batch) }
            #expect(error?.code == .concurrencyConflict)
            #expect(error?.streamID == "account-2")
            #expect(try await storage.streamVersion("account-1") == 0)
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 0, parked: 0, published: 0))
            #expect(try await storage.isProcessed(consumer: "c", eventID: batch.inboxEntry!.eventID) == false)

            var good = WriteBatch()
            try good.append(deposits([10]), to: "account-1", expectedVersion: .noStream)
            try good.append(deposits([20]), to: "account-2", expectedVersion: .exact(1))
            try good.append(deposits([30]), to: "account-1", expectedVersion: .exact(1))
            let stored = try await store.commit(good)
            #expect(stored.map(\.streamVersion) == [1, 2, 2])
            #expect(try await ordinals(stored.map(\.position)) == [2, 3, 4])
        }

        func duplicateEventIDIsRejected() async throws {
            let event = EventEnvelope(F.Deposited(amount: 1))
            try await store.append([event], to: "account-1")
            let again = await storeError { try await store.append([event], to: "account-2") }
            #expect(again?.code == .duplicateEventID)
            let twiceInOneBatch = await storeError {
                let other = EventEnvelope(F.Deposited(amount: 2))
                try await store.append([other, other], to: "account-3")
            }
            #expect(twiceInOneBatch?.code == .duplicateEventID)
            try await expectHead(atCount: 1)
            #expect(try await storage.streamVersion("account-2") == 0)
        }

        func globalOrderAcrossStreams() async throws {
            for round in 0..<5 {
                for stream in ["account-a", "account-b", "account-c"] {
                    try await store.append(deposits([round]), to: try StreamID(stream))
                }
            }
            _ = try await visiblePositions(atLeast: 15)
            let all = try await store.readAll()
            #expect(try await ordinals(all.map(\.position)) == Array(1...15))
            #expect(all.map(\.position) == all.map(\.position).sorted())
            #expect(all.prefix(3).map(\.streamID) == ["account-a", "account-b", "account-c"])
            #expect(all.filter { $0.streamID == "account-b" }.map(\.streamVersion) == [1, 2, 3, 4, 5])

            var paged: [Int64] = []
            var position: Int64 = 0
            while true {
                let page = try await store.readAllRecorded(after: position, limit: 4)
                guard let last = page.last else { break }
                #expect(page.count <= 4)
                paged += page.map(\.position)
                position = last.position
            }
            #expect(paged == all.map(\.position))
            #expect(try await store.readAll(after: all.last?.position ?? 0).isEmpty)
            #expect(try await storage.headPosition() == all.last?.position)
            let badLimit = await storeError { _ = try await store.readAll(after: 0, limit: 0) }
            #expect(badLimit?.code == .invalidArgument)
        }

        func flowsAreReadByCorrelationID() async throws {
            // Two flows interleaved over streams, an unrelated event, and a flow's first event
            // stored without a correlation id (its id names the flow).
            let start = EventEnvelope(F.Deposited(amount: 1))
            let flow = try #require(start.metadata.correlationID)
            let other = UUID()
            var bare = EventEnvelope(F.Deposited(amount: 100))
            bare.metadata.correlationID = nil
            try await store.append([start], to: "account-1")
            try await store.append(deposits([5], metadata: EventMetadata(correlationID: other)), to: "account-2")
            try await store.append(deposits([2], metadata: EventMetadata(correlationID: flow, causationID: start.id)), to: "account-2")
            try await store.append([bare], to: "account-3")
            try await store.append(deposits([101], metadata: EventMetadata(correlationID: bare.id)), to: "account-3")
            try await store.append(deposits([3], metadata: EventMetadata(correlationID: flow)), to: "account-3")
            _ = try await visiblePositions(atLeast: 6)

            let read = try await storage.readFlow(correlationID: flow)
            #expect(read.map(\.streamID) == ["account-1", "account-2", "account-3"])
            #expect(read.map(\.position) == read.map(\.position).sorted())
            #expect(read.first?.event.id == start.id)
            #expect(read.allSatisfy { $0.event.metadata.correlationID == flow })
            let bareFlow = try await storage.readFlow(correlationID: bare.id)
            #expect(bareFlow.map(\.streamVersion) == [1, 2])
            #expect(bareFlow.first?.event.id == bare.id)
            #expect(try await storage.readFlow(correlationID: other).count == 1)
            #expect(try await storage.readFlow(correlationID: UUID()).isEmpty)
        }

        func loadUpToVersion() async throws {
            try await store.append(deposits([1, 2, 3, 4, 5]), to: "account-1")
            let upTo3 = try await store.load("account-1", upToVersion: 3)
            #expect(upTo3.map(\.streamVersion) == [1, 2, 3])
            let from4 = try await store.load("account-1", fromVersion: 4)
            #expect(from4.compactMap { $0.envelope.as(F.Deposited.self)?.amount } == [4, 5])
            #expect(try await store.load("account-1", fromVersion: 2, upToVersion: 2).map(\.streamVersion) == [2])
            #expect(try await store.load("account-1", upToVersion: 99).count == 5)
        }

        func loadAsOfPointInTime() async throws {
            let base = 1_700_000_000.0
            let events = (0..<4).map { EventEnvelope(F.Deposited(amount: $0), createdAt: date(base + Double($0) * 60)) }
            try await store.append(events, to: "account-1")
            #expect(try await store.load("account-1", asOf: date(base + 60)).map(\.streamVersion) == [1, 2], "inclusive bound")
            #expect(try await store.load("account-1", asOf: date(base + 119.999)).map(\.streamVersion) == [1, 2])
            #expect(try await store.load("account-1", asOf: date(base - 1)).isEmpty)
            #expect(try await store.load("account-1", asOf: date(base + 3600)).count == 4)
        }

        func streamExistenceAndVersion() async throws {
            #expect(try await store.streamExists("account-1") == false)
            #expect(try await store.streamVersion("account-1") == 0)
            try await store.append(deposits([1, 2]), to: "account-1")
            #expect(try await store.streamExists("account-1"))
            #expect(try await store.streamVersion("account-1") == 2)
            #expect(try await store.streamExists("account-10") == false, "no prefix matching")
        }

        func concurrentWritersOneWins() async throws {
            try await store.append(deposits([0]), to: "account-1")
            let store = self.store
            let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for writer in 0..<16 {
                    group.addTask {
                        do {
                            try await store.append(deposits([writer]), to: "account-1", expectedVersion: .exact(1))
                            return true
                        } catch let error as EventStoreError where error.code == .concurrencyConflict {
                            #expect(error.actualVersion == 2)
                            return false
                        }
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.count { $0 } == 1)
            #expect(try await store.streamVersion("account-1") == 2)
        }

        // MARK: Outbox

        func publishAddsOutboxEntries() async throws {
            try await store.publish(deposits([1, 2]), to: "account-1")
            try await store.append(deposits([3]), to: "account-1")
            try await store.publish(deposits([4]), to: "account-2")
            let pending = try await due(limit: 10, at: Date())
            #expect(try await ordinals(pending.map(\.event.position)) == [1, 2, 4])
            #expect(pending.map(\.event.streamID) == ["account-1", "account-1", "account-2"])
            #expect(pending.map(\.state) == [.pending, .pending, .pending])
            #expect(pending.map(\.attempts) == [0, 0, 0])
            #expect(pending.map(\.id) == pending.map(\.id).sorted())
            #expect(try JSONDecoder().decode(F.Deposited.self, from: pending[2].event.event.payload).amount == 4)
            #expect(try await due(limit: 2, at: Date()).count == 2)
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 3, parked: 0, published: 0))
        }

        func outboxLeasesShareWorkInStreamOrder() async throws {
            try await store.publish(deposits([1, 2]), to: "account-1")
            try await store.publish(deposits([3]), to: "account-2")
            let now = Date()
            let firstRelay = try await storage.claimOutboxEntries(limit: 1, now: now, leaseDuration: 30)
            #expect(try await ordinals(firstRelay.map(\.event.position)) == [1])
            let secondRelay = try await storage.claimOutboxEntries(limit: 10, now: now, leaseDuration: 30)
            #expect(
                try await ordinals(secondRelay.map(\.event.position)) == [3], "account-1's second event waits while its first is leased")
            #expect(try await storage.claimOutboxEntries(limit: 10, now: now, leaseDuration: 30).isEmpty)

            try await storage.markPublished([firstRelay[0].id], at: now)
            let afterPublish = try await storage.claimOutboxEntries(limit: 10, now: now, leaseDuration: 30)
            #expect(try await ordinals(afterPublish.map(\.event.position)) == [2])

            // A relay that died: its lease expires and the entries are handed out again.
            let expired = try await storage.claimOutboxEntries(limit: 10, now: now.addingTimeInterval(31), leaseDuration: 30)
            #expect(try await ordinals(expired.map(\.event.position)) == [2, 3])
            let failed = try await storage.recordFailedAttempt(expired[0].id, error: "timeout", nextAttemptAt: now, attemptLimit: 5)
            #expect(failed?.attempts == 1)
            #expect(
                try await ordinals(due(limit: 10, at: now.addingTimeInterval(32)).map(\.event.position)) == [2], "a failure ends the lease")
        }

        func outboxMarkPublished() async throws {
            try await store.publish(deposits([1, 2, 3]), to: "account-1")
            let pending = try await due(limit: 10, at: Date())
            try await storage.markPublished(Array(pending.prefix(2).map(\.id)), at: Date())
            let rest = try await due(limit: 10, at: Date())
            #expect(rest.map(\.id) == [pending[2].id])
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 1, parked: 0, published: 2))
            try await storage.markPublished([pending[0].id], at: Date())
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 1, parked: 0, published: 2), "marking twice is harmless")
        }

        func outboxReleaseHandsEntriesBack() async throws {
            try await store.publish(deposits([1, 2]), to: "account-1")
            let now = Date()
            let claimed = try await storage.claimOutboxEntries(limit: 10, now: now, leaseDuration: 30)
            #expect(try await ordinals(claimed.map(\.event.position)) == [1, 2])
            try await storage.releaseOutboxEntries([claimed[1].id])
            #expect(try await storage.claimOutboxEntries(limit: 10, now: now, leaseDuration: 30).isEmpty, "behind its leased predecessor")
            _ = try await storage.recordFailedAttempt(
                claimed[0].id, error: "nacked", nextAttemptAt: now.addingTimeInterval(60), attemptLimit: 5)
            #expect(try await storage.claimOutboxEntries(limit: 10, now: now, leaseDuration: 30).isEmpty, "behind its waiting predecessor")
            try await storage.markPublished([claimed[0].id], at: now)
            let again = try await storage.claimOutboxEntries(limit: 10, now: now, leaseDuration: 30)
            #expect(again.map(\.id) == [claimed[1].id], "due at once after its predecessor was published")
            #expect(again.map(\.attempts) == [0], "a release records no attempt")
            #expect(again.map(\.lastError) == [nil])
        }

        func outboxRenewExtendsLiveLeasesOnly() async throws {
            try await store.publish(deposits([1]), to: "account-1")
            try await store.publish(deposits([2]), to: "account-2")
            try await store.publish(deposits([3]), to: "account-3")
            let now = Date()
            let claimed = try await storage.claimOutboxEntries(limit: 10, now: now, leaseDuration: 1)
            #expect(claimed.count == 3)
            try await storage.markPublished([claimed[1].id], at: now)
            try await storage.releaseOutboxEntries([claimed[2].id])
            try await storage.renewOutboxLeases(claimed.map(\.id), until: now.addingTimeInterval(60))
            let later = try await due(limit: 10, at: now.addingTimeInterval(2))
            #expect(
                later.map(\.id) == [claimed[2].id], "the renewed lease holds past its first expiry; the released entry is not leased again")
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 2, parked: 0, published: 1), "renewing publishes nothing")
            let afterRenewal = try await due(limit: 10, at: now.addingTimeInterval(61))
            #expect(Set(afterRenewal.map(\.id)) == [claimed[0].id, claimed[2].id], "due again once the renewed lease ends")
        }

        func outboxRetryHoldsBackItsStreamOnly() async throws {
            try await store.publish(deposits([1, 2]), to: "account-1")
            try await store.publish(deposits([3]), to: "account-2")
            let now = Date()
            let first = try await due(limit: 10, at: now)[0]
            let failed = try await storage.recordFailedAttempt(
                first.id, error: "nacked by broker", nextAttemptAt: now.addingTimeInterval(60), attemptLimit: 5)
            #expect(failed?.attempts == 1)
            #expect(failed?.state == .pending)
            #expect(failed?.lastError == "nacked by broker")

            let held = try await due(limit: 10, at: now)
            #expect(held.map(\.event.streamID) == ["account-2"], "account-1's later event waits behind its failed one")

            let later = try await due(limit: 10, at: now.addingTimeInterval(61))
            #expect(try await ordinals(later.map(\.event.position)) == [1, 2, 3])
            #expect(later[0].attempts == 1)
            #expect(later[0].lastError == "nacked by broker")
        }

        func outboxParkAndRequeue() async throws {
            try await store.publish(deposits([1, 2]), to: "account-1")
            try await store.publish(deposits([3]), to: "account-2")
            let now = Date()
            let entry = try await due(limit: 1, at: now)[0]
            _ = try await storage.recordFailedAttempt(entry.id, error: "first", nextAttemptAt: now, attemptLimit: 2)
            let parked = try await storage.recordFailedAttempt(entry.id, error: "second", nextAttemptAt: now, attemptLimit: 2)
            #expect(parked?.state == .parked)
            #expect(parked?.attempts == 2)
            #expect(try await storage.recordFailedAttempt(entry.id, error: "third", nextAttemptAt: now, attemptLimit: 2) == nil)

            #expect(try await storage.parkedOutboxEntries(limit: 10).map(\.id) == [entry.id])
            #expect(try await storage.parkedOutboxEntries(limit: 10).first?.lastError == "second")
            #expect(try await due(limit: 10, at: now.addingTimeInterval(3600)).map(\.event.streamID) == ["account-2"])
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 2, parked: 1, published: 0))

            #expect(try await storage.requeueParked([entry.id, 9999]) == 1)
            let requeued = try await due(limit: 10, at: now)
            #expect(try await ordinals(requeued.map(\.event.position)) == [1, 2, 3])
            #expect(requeued[0].attempts == 0)
            #expect(try await storage.parkedOutboxEntries(limit: 10).isEmpty)
        }

        func outboxHousekeeping() async throws {
            try await store.publish(deposits([1, 2, 3]), to: "account-1")
            let entries = try await due(limit: 10, at: Date())
            let old = date(1_700_000_000)
            try await storage.markPublished([entries[0].id], at: old)
            try await storage.markPublished([entries[1].id], at: old.addingTimeInterval(3600))
            #expect(try await storage.deletePublishedOutboxEntries(publishedUpTo: old.addingTimeInterval(60)) == 1)
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 1, parked: 0, published: 1))
            #expect(try await storage.deletePublishedOutboxEntries(publishedUpTo: Date()) == 1)
            #expect(try await storage.outboxCounts() == OutboxCounts(pending: 1, parked: 0, published: 0))
            #expect(try await store.load("account-1").count == 3, "housekeeping never touches events")
        }

        // MARK: Inbox

        func inboxRunsOnce() async throws {
            let incoming = UUID()
            let runs = NIOLockedValueBox(0)
            for _ in 0..<3 {
                _ = try await store.processOnce(consumer: "payments", eventID: incoming) { batch in
                    runs.withLockedValue { $0 += 1 }
                    try batch.publish(deposits([10]), to: "account-1")
                }
            }
            #expect(runs.withLockedValue { $0 } == 1)
            #expect(try await store.load("account-1").count == 1)
            #expect(try await storage.outboxCounts().pending == 1)
            #expect(try await storage.isProcessed(consumer: "payments", eventID: incoming))
            #expect(try await storage.isProcessed(consumer: "invoices", eventID: incoming) == false, "each consumer has its own inbox")
            let other = try await store.processOnce(consumer: "invoices", eventID: incoming) { _ in }
            #expect(other.wasProcessed, "an empty batch still records the inbox entry")
            #expect(try await storage.isProcessed(consumer: "invoices", eventID: incoming))
        }

        func inboxRetentionAndSizes() async throws {
            let incoming = [UUID(), UUID()]
            for eventID in incoming {
                _ = try await store.processOnce(consumer: "payments", eventID: eventID) { batch in
                    try batch.publish(deposits([10]), to: "account-1")
                }
            }
            let sizes = StoreSizes(events: 2, outbox: OutboxCounts(pending: 2, parked: 0, published: 0), inboxEntries: 2, heldEvents: 0)
            #expect(try await storage.sizes() == sizes)
            #expect(
                try await storage.deleteInboxEntries(processedUpTo: Date().addingTimeInterval(-3600)) == 0,
                "entries younger than the cutoff stay")
            #expect(try await storage.deleteInboxEntries(processedUpTo: Date().addingTimeInterval(60)) == 2)
            #expect(try await storage.isProcessed(consumer: "payments", eventID: incoming[0]) == false)
            var pruned = sizes
            pruned.inboxEntries = 0
            #expect(try await storage.sizes() == pruned, "pruning the inbox keeps the events and the outbox")
        }

        func inboxFailureWritesNothing() async throws {
            struct HandlerFailed: Error {}
            let incoming = UUID()
            await #expect(throws: HandlerFailed.self) {
                _ = try await store.processOnce(consumer: "payments", eventID: incoming) { batch in
                    try batch.append(deposits([1]), to: "account-1")
                    throw HandlerFailed()
                }
            }
            #expect(try await storage.isProcessed(consumer: "payments", eventID: incoming) == false)
            #expect(try await store.streamExists("account-1") == false)

            try await store.append(deposits([1]), to: "account-1")
            let conflict = await storeError {
                _ = try await store.processOnce(consumer: "payments", eventID: incoming) { batch in
                    try batch.append(deposits([2]), to: "account-1", expectedVersion: .noStream)
                }
            }
            #expect(conflict?.code == .concurrencyConflict)
            #expect(try await storage.isProcessed(consumer: "payments", eventID: incoming) == false, "a retry can still process it")
        }

        func inboxRaceProcessesOnce() async throws {
            let incoming = UUID()
            let store = self.store
            let processed = try await withThrowingTaskGroup(of: Bool.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        try await store.processOnce(consumer: "payments", eventID: incoming) { batch in
                            try batch.append(deposits([worker]), to: try StreamID("account-\(worker)"))
                        }.wasProcessed
                    }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(processed == 1)
            try await expectHead(atCount: 1)
        }

        func inboxLookupOfSeveralEntries() async throws {
            let events = (0..<5).map { _ in UUID() }
            for eventID in events[..<3] {
                _ = try await store.processOnce(consumer: "payments", eventID: eventID) { _ in }
            }
            _ = try await store.processOnce(consumer: "invoices", eventID: events[4]) { _ in }
            let asked =
                events.map { InboxEntry(consumer: "payments", eventID: $0) } + [InboxEntry(consumer: "invoices", eventID: events[4])]
            let processed = try await store.processedInboxEntries(asked)
            #expect(
                processed
                    == Set(
                        events[..<3].map { InboxEntry(consumer: "payments", eventID: $0) } + [
                            InboxEntry(consumer: "invoices", eventID: events[4])
                        ]))
            #expect(try await store.processedInboxEntries([]).isEmpty)

            // More entries than one query of a storage may take, two consumers interleaved,
            // some event ids processed by both, some by one, some by none.
            let many = (0..<130).map { _ in UUID() }
            var done: [InboxEntry] = []
            for (index, eventID) in many.enumerated() {
                if index % 3 == 0 { done.append(InboxEntry(consumer: "payments", eventID: eventID)) }
                if index % 4 == 0 { done.append(InboxEntry(consumer: "invoices", eventID: eventID)) }
            }
            let results = await store.commitEach(
                done.map { entry in
                    var batch = WriteBatch()
                    batch.inboxEntry = entry
                    return batch
                })
            #expect(results.allSatisfy { (try? $0.get())?.wasProcessed == true })
            let askedMany = many.flatMap { [InboxEntry(consumer: "invoices", eventID: $0), InboxEntry(consumer: "payments", eventID: $0)] }
            #expect(try await store.processedInboxEntries(askedMany) == Set(done))
        }

        func commitEachIsAtomicPerBatch() async throws {
            let done = UUID()
            _ = try await store.processOnce(consumer: "payments", eventID: done) { _ in }
            func batch(
                _ amount: Int, to stream: StreamID, expecting version: ExpectedVersion = .any, inbox eventID: UUID? = nil
            ) throws -> WriteBatch {
                var batch = WriteBatch()
                try batch.publish(deposits([amount]), to: stream, expectedVersion: version)
                batch.inboxEntry = eventID.map { InboxEntry(consumer: "payments", eventID: $0) }
                return batch
            }
            let fresh = UUID()
            let stored = try await store.append(deposits([0]), to: "account-0")[0].envelope.id
            // Fails after writing its first event: its second reuses a stored event id.
            var halfway = WriteBatch()
            try halfway.append([EventEnvelope(F.Deposited(amount: 6)), EventEnvelope(F.Deposited(amount: 7), id: stored)], to: "account-4")
            halfway.inboxEntry = InboxEntry(consumer: "payments", eventID: UUID())
            let results = await store.commitEach([
                try batch(1, to: "account-1", expecting: .noStream, inbox: fresh),
                try batch(2, to: "account-1", expecting: .noStream),  // loses to the first
                try batch(3, to: "account-2", inbox: done),  // already processed
                try batch(4, to: "account-1", expecting: .exact(1)),
                halfway,
                try batch(5, to: "account-3"),
            ])
            #expect(results.count == 6)
            guard results.count == 6 else { return }
            #expect((try? results[0].get())?.wasProcessed == true)
            if case .failure(let error as EventStoreError) = results[1] {
                #expect(error.code == .concurrencyConflict)
            } else {
                Issue.record("expected a concurrency conflict, got \(results[1])")
            }
            if case .success(.alreadyProcessed) = results[2] {} else { Issue.record("expected alreadyProcessed, got \(results[2])") }
            #expect((try? results[3].get())?.wasProcessed == true)
            if case .failure(let error as EventStoreError) = results[4] {
                #expect(error.code == .duplicateEventID)
            } else {
                Issue.record("expected a duplicate event id, got \(results[4])")
            }
            #expect((try? results[5].get())?.wasProcessed == true)
            _ = try await visiblePositions(atLeast: 4)
            let amounts = try await store.readAll().compactMap { $0.envelope.as(F.Deposited.self)?.amount }
            #expect(amounts == [0, 1, 4, 5], "the failed batches wrote nothing; the others in order")
            #expect(try await store.streamExists("account-4") == false)
            #expect(try await storage.outboxCounts().pending == 3)
            #expect(try await storage.isProcessed(consumer: "payments", eventID: fresh))
            #expect(try await storage.isProcessed(consumer: "payments", eventID: halfway.inboxEntry!.eventID) == false)
            #expect(await store.commitEach([]).isEmpty)
        }

        // MARK: Snapshots and checkpoints

        // MARK: Held events

        /// A held event of `stream` (source `order`) for `consumer`.
        private func held(
            _ version: Int64, of stream: StreamID, consumer: String = "payment", attempts: Int = 0,
            metadata: EventMetadata = EventMetadata()
        ) throws -> HeldEvent {
            HeldEvent(
                sequence: HeldEvent.Sequence(consumer: consumer, sourceContext: "order", sourceStream: stream),
                streamVersion: version,
                event: try EventRegistry.encode(
                    EventEnvelope(F.Deposited(amount: Int(version)), createdAt: date(1_700_000_000.5), metadata: metadata)),
                attempts: attempts,
                lastError: attempts > 0 ? "gateway down" : nil,
                nextAttemptAt: date(1_700_000_100.25)
            )
        }

        func heldEventsFormSequencesPerStream() async throws {
            let sequence = HeldEvent.Sequence(consumer: "payment", sourceContext: "order", sourceStream: "order-1")
            #expect(
                try await storage.holdEvent(try held(1, of: "order-1"), onlyBehindOthers: true) == .notHeld,
                "an empty sequence holds nothing behind")
            #expect(try await storage.heldEvents(consumer: "payment", sequence: nil).isEmpty)

            let metadata = EventMetadata(correlationID: UUID(), causationID: UUID(), traceContext: ["traceparent": "00-abc-def-01"])
            let head = try held(2, of: "order-1", attempts: 1, metadata: metadata)
            guard case .held(let headNumber) = try await storage.holdEvent(head, onlyBehindOthers: false) else {
                Issue.record("the failed event was not held")
                return
            }
            let second = try held(3, of: "order-1")
            let third = try held(4, of: "order-1")
            #expect(try await storage.holdEvent(second, onlyBehindOthers: true) != .notHeld)
            #expect(try await storage.holdEvent(try held(1, of: "order-2"), onlyBehindOthers: true) == .notHeld, "other streams flow")
            #expect(try await storage.holdEvent(third, onlyBehindOthers: true) != .notHeld)
            #expect(try await storage.holdEvent(second, onlyBehindOthers: true) == .alreadyHeld, "a redelivery is not held twice")
            #expect(try await storage.holdEvent(head, onlyBehindOthers: false) == .alreadyHeld)
            #expect(try await storage.holdEvent(try held(1, of: "order-1", consumer: "invoice"), onlyBehindOthers: true) == .notHeld)

            let events = try await storage.heldEvents(consumer: "payment", sequence: sequence)
            #expect(events.map(\.event.id) == [head.event.id, second.event.id, third.event.id], "held in arrival order")
            #expect(events.map(\.streamVersion) == [2, 3, 4])
            #expect(events.map(\.sequenceNumber) == events.map(\.sequenceNumber).sorted())
            #expect(events.first?.sequenceNumber == headNumber)
            let stored = try #require(events.first)
            #expect(stored.sequence == sequence)
            #expect(stored.event.typeName == "Deposited")
            #expect(stored.event.metadata == metadata)
            #expect(stored.event.payload == head.event.payload)
            #expect(stored.event.schemaVersion == head.event.schemaVersion)
            expectSameInstant(stored.event.createdAt, head.event.createdAt)
            #expect(stored.attempts == 1)
            #expect(stored.lastError == "gateway down")
            expectSameInstant(stored.nextAttemptAt, head.nextAttemptAt)
            #expect(stored.state == .waiting)
            #expect(events.dropFirst().allSatisfy { $0.attempts == 0 && $0.lastError == nil })

            // A second sequence of the same consumer, and another consumer's.
            #expect(try await storage.holdEvent(try held(7, of: "order-3", attempts: 1), onlyBehindOthers: false) != .notHeld)
            #expect(
                try await storage.holdEvent(try held(1, of: "order-1", consumer: "invoice", attempts: 1), onlyBehindOthers: false)
                    != .notHeld)
            let all = try await storage.heldEvents(consumer: "payment", sequence: nil)
            #expect(all.map(\.sequence.sourceStream) == ["order-1", "order-1", "order-1", "order-3"])
            #expect(try await storage.heldEvents(consumer: "invoice", sequence: nil).map(\.streamVersion) == [1])
        }

        func heldEventsUpdateAndRelease() async throws {
            let sequence = HeldEvent.Sequence(consumer: "payment", sourceContext: "order", sourceStream: "order-1")
            _ = try await storage.holdEvent(try held(1, of: "order-1", attempts: 1), onlyBehindOthers: false)
            _ = try await storage.holdEvent(try held(2, of: "order-1"), onlyBehindOthers: true)
            var head = try #require(try await storage.heldEvents(consumer: "payment", sequence: sequence).first)
            head.attempts = 5
            head.lastError = "still down"
            head.nextAttemptAt = date(1_700_000_200)
            head.state = .parked
            #expect(try await storage.updateHeldEvent(head))
            let updated = try #require(try await storage.heldEvents(consumer: "payment", sequence: sequence).first)
            #expect(updated.attempts == 5)
            #expect(updated.lastError == "still down")
            #expect(updated.state == .parked)
            expectSameInstant(updated.nextAttemptAt, head.nextAttemptAt)
            #expect(updated.event == head.event, "an update leaves the event alone")

            #expect(try await storage.releaseHeldEvent(sequenceNumber: head.sequenceNumber))
            #expect(try await !storage.releaseHeldEvent(sequenceNumber: head.sequenceNumber), "released once")
            #expect(try await !storage.updateHeldEvent(head), "a released event is not updated")
            let rest = try await storage.heldEvents(consumer: "payment", sequence: sequence)
            #expect(rest.map(\.streamVersion) == [2])
            #expect(try await storage.holdEvent(head, onlyBehindOthers: true) != .alreadyHeld, "a released event may be held again")
            for event in try await storage.heldEvents(consumer: "payment", sequence: nil) {
                #expect(try await storage.releaseHeldEvent(sequenceNumber: event.sequenceNumber))
            }
            #expect(
                try await storage.holdEvent(try held(3, of: "order-1"), onlyBehindOthers: true) == .notHeld,
                "an emptied sequence holds nothing")
        }

        func snapshotsReplaceOlder() async throws {
            #expect(try await storage.latestSnapshot(of: "account-1") == nil)
            var batch = WriteBatch()
            batch.snapshots = [Snapshot(streamID: "account-1", version: 10, state: Data("{\"a\":1}".utf8), schemaVersion: 1)]
            try await store.commit(batch)
            batch.snapshots = [Snapshot(streamID: "account-1", version: 20, state: Data("{\"a\":2}".utf8), schemaVersion: 3)]
            try await store.commit(batch)
            let latest = try await storage.latestSnapshot(of: "account-1")
            #expect(latest == Snapshot(streamID: "account-1", version: 20, state: Data("{\"a\":2}".utf8), schemaVersion: 3))
            #expect(try await storage.latestSnapshot(of: "account-2") == nil)
        }

        func checkpointsStoreAndReset() async throws {
            #expect(try await storage.checkpoint(named: "balances") == nil)
            var batch = WriteBatch()
            batch.checkpoint = ProjectionCheckpoint(name: "balances", position: 7, state: Data("[1]".utf8))
            try await store.commit(batch)
            batch.checkpoint = ProjectionCheckpoint(name: "balances", position: 9, state: Data("[2]".utf8))
            try await store.commit(batch)
            #expect(
                try await storage.checkpoint(named: "balances")
                    == ProjectionCheckpoint(name: "balances", position: 9, state: Data("[2]".utf8)))
            try await storage.resetCheckpoint(named: "balances")
            #expect(try await storage.checkpoint(named: "balances") == nil)
        }

        func projectionCatchUpAndRebuild() async throws {
            struct Totals: Projection {
                let name = "totals"
                var initialState: [String: Int] { [:] }
                func apply(_ event: StoredEvent, to state: inout [String: Int]) {
                    if let deposit = event.envelope.as(F.Deposited.self) {
                        state[event.streamID.rawValue, default: 0] += deposit.amount
                    }
                }
            }
            try await store.append(deposits([1, 2, 3]), to: "account-1")
            try await store.append(deposits([10]), to: "account-2")
            let runner = ProjectionRunner(projection: Totals(), store: store, batchSize: 2)
            _ = try await visiblePositions(atLeast: 4)
            let first = try await runner.catchUp()
            #expect(first.applied == 4)
            #expect(try await ordinals([first.position]) == [4])
            #expect(first.state == ["account-1": 6, "account-2": 10])

            try await store.append(deposits([100]), to: "account-1")
            _ = try await visiblePositions(atLeast: 5)
            let second = try await runner.catchUp()
            #expect(second.applied == 1, "only events after the checkpoint")
            #expect(second.state["account-1"] == 106)
            #expect(try await ordinals([runner.current().position]) == [5])
            #expect(try await runner.catchUp().applied == 0)

            let rebuilt = try await runner.rebuild()
            #expect(rebuilt.applied == 5)
            #expect(rebuilt.state == second.state)
        }

        // MARK: Repository

        func repositoryCommands() async throws {
            let accounts = Repository<F.Account>(store: store, saveMode: .publish)
            let correlation = UUID()
            try await accounts.new("1", metadata: EventMetadata(correlationID: correlation)) { account in
                account.open(owner: "Ada")
                account.deposit(50)
            }
            let duplicate = await storeError { try await accounts.new("1") { $0.open(owner: "Eve") } }
            #expect(duplicate?.code == .concurrencyConflict)

            try await accounts.update("1") { try $0.withdraw(20) }
            await #expect(throws: F.InsufficientFunds(balance: 30, requested: 100)) {
                try await accounts.update("1") { try $0.withdraw(100) }
            }
            let missing = await storeError { try await accounts.update("2") { $0.deposit(1) } }
            #expect(missing?.code == .streamNotFound)

            let loaded = try #require(try await accounts.load("1"))
            #expect(loaded.version == 3)
            #expect(loaded.aggregate.owner == "Ada")
            #expect(loaded.aggregate.balance == 30)
            #expect(loaded.aggregate.uncommittedEvents.isEmpty)
            #expect(try await accounts.load("2") == nil)

            let events = try await store.load("account-1")
            #expect(events.prefix(2).allSatisfy { $0.envelope.metadata.correlationID == correlation })
            #expect(events[2].envelope.metadata.correlationID == events[2].envelope.id, "a command without correlation starts a flow")
            #expect(try await storage.outboxCounts().pending == 3, "publish mode writes outbox entries")

            // Two commands loaded at the same version: the second to save loses.
            var batchA = WriteBatch()
            var batchB = WriteBatch()
            try await accounts.update("1", in: &batchA) { $0.deposit(1) }
            try await accounts.update("1", in: &batchB) { $0.deposit(2) }
            try await store.commit(batchA)
            let lost = await storeError { try await store.commit(batchB) }
            #expect(lost?.code == .concurrencyConflict)
            #expect(lost?.expectedVersion == .exact(3))
            #expect(lost?.actualVersion == 4)
        }

        func repositorySnapshots() async throws {
            let plain = Repository<F.Account>(store: store)
            let snapshotting = Repository<F.Account>(store: store, snapshotFrequency: 10)
            try await snapshotting.new("1") { $0.open(owner: "Ada") }
            for amount in 1...24 {
                try await snapshotting.update("1") { $0.deposit(amount) }
            }
            let snapshot = try #require(try await storage.latestSnapshot(of: "account-1"))
            #expect(snapshot.version == 20)

            let fromSnapshot = try #require(try await snapshotting.load("1"))
            let fromEvents = try #require(try await plain.load("1"))
            #expect(fromSnapshot.version == 25)
            #expect(fromSnapshot.aggregate == fromEvents.aggregate)
            #expect(fromSnapshot.aggregate.balance == (1...24).reduce(0, +))

            // A snapshot of another schema version is ignored, not misread.
            var batch = WriteBatch()
            batch.snapshots = [Snapshot(streamID: "account-1", version: 25, state: Data("{}".utf8), schemaVersion: 99)]
            try await store.commit(batch)
            #expect(try await snapshotting.load("1")?.aggregate == fromEvents.aggregate)
        }

        // MARK: Subscriptions and registry

        func subscriptionsRunAfterCommit() async throws {
            let seen = NIOLockedValueBox<[Int]>([])
            let everything = NIOLockedValueBox(0)
            var subscriptions = EventSubscriptions()
            subscriptions.subscribe(to: F.Deposited.self) { deposit, stored in
                #expect(stored.position > 0)
                seen.withLockedValue { $0.append(deposit.amount) }
            }
            subscriptions.subscribeToAll { _ in everything.withLockedValue { $0 += 1 } }
            struct SubscriberFailed: Error {}
            subscriptions.subscribe(to: F.AccountOpened.self) { _, _ in throw SubscriberFailed() }
            let store = EventStore(storage: storage, registry: F.registry, subscriptions: subscriptions)

            try await store.append(
                [EventEnvelope(F.AccountOpened(owner: "Ada"))] + deposits([5, 6]), to: "account-1", expectedVersion: .noStream)
            #expect(seen.withLockedValue { $0 } == [5, 6])
            #expect(everything.withLockedValue { $0 } == 3)
            #expect(try await store.streamVersion("account-1") == 3, "a failing subscriber does not undo the append")

            _ = await storeError { try await store.append(deposits([7]), to: "account-1", expectedVersion: .noStream) }
            #expect(seen.withLockedValue { $0 } == [5, 6], "nothing runs for a rejected append")
        }

        func upcastersApplyOnRead() async throws {
            let v1 = EncodedEvent(
                id: UUID(), typeName: "Withdrawn", schemaVersion: 1, createdAt: Date(),
                metadata: EventMetadata(), payload: Data(#"{"total":15}"#.utf8)
            )
            var batch = WriteBatch()
            batch.append(encoded: [v1], to: "account-1", expectedVersion: .any, publishes: false)
            try await store.commit(batch)
            try await store.append([EventEnvelope(F.Withdrawn(amount: 5))], to: "account-1")
            let loaded = try await store.load("account-1")
            #expect(loaded.compactMap { $0.envelope.as(F.Withdrawn.self)?.amount } == [15, 5])

            var withoutUpcaster = EventRegistry([F.Withdrawn.self])
            withoutUpcaster.register(F.Deposited.self)
            let strict = EventStore(storage: storage, registry: withoutUpcaster)
            let missing = await storeError { _ = try await strict.load("account-1") }
            #expect(missing?.code == .missingUpcaster)
            #expect(missing?.typeName == "Withdrawn")
        }

        func unknownTypeIsTypedError() async throws {
            let unknown = EncodedEvent(
                id: UUID(), typeName: "AccountFrozen", schemaVersion: 1, createdAt: Date(),
                metadata: EventMetadata(), payload: Data("{}".utf8)
            )
            let garbage = EncodedEvent(
                id: UUID(), typeName: "Deposited", schemaVersion: 1, createdAt: Date(),
                metadata: EventMetadata(), payload: Data(#"{"amount":"many"}"#.utf8)
            )
            var batch = WriteBatch()
            batch.append(encoded: [unknown], to: "account-1", expectedVersion: .any, publishes: false)
            batch.append(encoded: [garbage], to: "account-2", expectedVersion: .any, publishes: false)
            try await store.commit(batch)
            let error = await storeError { _ = try await store.load("account-1") }
            #expect(error?.code == .unknownEventType)
            #expect(error?.typeName == "AccountFrozen")
            let undecodable = await storeError { _ = try await store.load("account-2") }
            #expect(undecodable?.code == .undecodablePayload)
            #expect(try await visiblePositions(atLeast: 2).count == 2, "raw reads still work")
        }
    }
}
