@testable import EventSourceryAMQP
import EventSourcery
import EventSourceryRabbitMQ
import Foundation
import Testing

/// How the relay settles a claimed batch: waves of at most one entry per stream, and what
/// becomes of each entry for every mix of outcomes, without a broker or a store.
struct RelaySettlementTests {
    private typealias Action = RelaySettlement.Action

    private static let policy = RetryPolicy(initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1), attemptLimit: 3)
    private static let lost = PublishOutcome.notConfirmed(AMQPError(.connectionClosed, "connection reset"))
    private static let returned = PublishOutcome.returned(replyCode: 312, replyText: "NO_ROUTE")

    /// Outbox entries with ids 1, 2, … on the given streams, versions counted per stream.
    private func entries(_ streams: [String], attempts: [Int: Int] = [:]) -> [OutboxEntry] {
        var versions: [String: Int64] = [:]
        return streams.enumerated().map { offset, stream in
            let id = Int64(offset + 1)
            versions[stream, default: 0] += 1
            let event = EncodedEvent(
                id: UUID(), typeName: "ItemCounted", schemaVersion: 1, createdAt: Date(timeIntervalSince1970: 0), metadata: EventMetadata(),
                payload: Data("{}".utf8))
            return OutboxEntry(
                id: id, event: RecordedEvent(streamID: try! StreamID(stream), streamVersion: versions[stream]!, position: id, event: event),
                state: .pending, attempts: attempts[Int(id)] ?? 0, lastError: nil, nextAttemptAt: nil)
        }
    }

    /// Runs the settlement, answering each entry id with its outcome (confirmed unless
    /// listed); returns the waves (entry ids) and the actions.
    private func settle(
        _ batch: [OutboxEntry], _ outcomes: [Int64: PublishOutcome] = [:], stopAfterWaves: Int = .max
    ) -> (waves: [[Int64]], actions: [Action]) {
        var settlement = RelaySettlement(batch, retry: Self.policy, randomFraction: { 0 })
        var waves: [[Int64]] = []
        while waves.count < stopAfterWaves, case let wave = settlement.nextWave(), !wave.isEmpty {
            waves.append(wave.map(\.id))
            settlement.record(wave.map { outcomes[$0.id] ?? .confirmed })
        }
        return (waves, settlement.finish())
    }

    private func ids(_ entries: [OutboxEntry]) -> [Int64] { entries.map(\.id) }

    @Test func anEmptyBatchSendsNothingAndDoesNothing() {
        let (waves, actions) = settle([])
        #expect(waves.isEmpty)
        #expect(actions.isEmpty)
    }

    @Test func wavesHoldAtMostOneEntryPerStreamInOutboxOrder() {
        let (waves, actions) = settle(entries(["a", "b", "a", "c", "a", "b"]))
        #expect(waves == [[1, 2, 4], [3, 6], [5]])
        #expect(actions == [.markPublished([1, 2, 4, 3, 6, 5])])
    }

    @Test func distinctStreamsGoOutInOneWave() {
        let (waves, actions) = settle(entries(["a", "b", "c", "d"]))
        #expect(waves == [[1, 2, 3, 4]])
        #expect(actions == [.markPublished([1, 2, 3, 4])])
    }

    @Test func aLaterWaveIsOrderedByOutboxIDAcrossStreams() {
        // a: 1, 5 · b: 2, 3 — the second wave sends b's 3 before a's 5.
        let (waves, _) = settle(entries(["a", "b", "b", "c", "a"]))
        #expect(waves == [[1, 2, 4], [3, 5]])
    }

    @Test func aNackedEntryHoldsBackTheLaterEntriesOfItsStreamOnly() {
        let batch = entries(["a", "b", "a", "b", "a"])
        let (waves, actions) = settle(batch, [1: .nacked])
        #expect(waves == [[1, 2], [4]], "a's 3 and 5 are never in flight after a's 1 failed")
        #expect(
            actions == [
                .markPublished([2, 4]),
                .retry(batch[0], attempts: 1, reason: "the broker refused the message (basic.nack)", retryIn: .milliseconds(200)),
                .holdBack([batch[2], batch[4]]),
            ])
    }

    @Test func kRefusedWhileKPlusOneWouldHaveBeenConfirmedSendsKPlusOneNever() {
        // The mixed outcome within one stream: a's 1 confirmed, 2 returned, 3 would be confirmed.
        let batch = entries(["a", "a", "a"])
        let (waves, actions) = settle(batch, [2: Self.returned])
        #expect(waves == [[1], [2]])
        #expect(
            actions == [
                .markPublished([1]),
                .retry(
                    batch[1], attempts: 1,
                    reason: "unroutable: the broker returned the message (312 NO_ROUTE); check the exchange's bindings",
                    retryIn: .milliseconds(200)),
                .holdBack([batch[2]]),
            ])
    }

    @Test func aRefusalReachingTheAttemptLimitParks() {
        let batch = entries(["a", "a", "b"], attempts: [1: 2, 3: 1])
        let (_, actions) = settle(batch, [1: .nacked, 3: .nacked])
        #expect(
            actions == [
                .park(batch[0], attempts: 3, reason: "the broker refused the message (basic.nack)"),
                .retry(batch[2], attempts: 2, reason: "the broker refused the message (basic.nack)", retryIn: .milliseconds(400)),
                .holdBack([batch[1]]),
            ])
    }

    @Test func aLostConfirmNeverParksAndHoldsBackItsStream() {
        let batch = entries(["a", "a", "b"], attempts: [1: 7])
        let (waves, actions) = settle(batch, [1: Self.lost, 3: Self.lost])
        #expect(waves == [[1, 3]])
        guard case .retry(let entry, let attempts, let reason, let delay) = actions.first else {
            Issue.record("expected a retry first: \(actions)")
            return
        }
        #expect(entry == batch[0])
        #expect(attempts == 8, "past the limit of 3, yet not parked")
        #expect(reason.hasPrefix("no confirm before the connection was lost"))
        #expect(delay == .seconds(1), "capped backoff")
        #expect(actions.count == 3)
        #expect(actions.last == .holdBack([batch[1]]))
    }

    @Test func everyOutcomeMixedInOneBatchIsSettledOnce() {
        // a: 1 ok, 5 nacked, 9 held · b: 2 returned, 6 held · c: 3 lost, 7 held · d: 4 ok, 8 ok
        let batch = entries(["a", "b", "c", "d", "a", "b", "c", "d", "a"])
        let (waves, actions) = settle(batch, [5: .nacked, 2: Self.returned, 3: Self.lost])
        #expect(waves == [[1, 2, 3, 4], [5, 8]])
        #expect(actions.first == .markPublished([1, 4, 8]))
        let failed: [Int64] = actions.compactMap {
            if case .retry(let entry, _, _, _) = $0 { return entry.id }
            return nil
        }
        #expect(failed == [2, 3, 5])
        #expect(actions.last == .holdBack([batch[5], batch[6], batch[8]]))
        // Every entry of the batch is settled exactly once.
        var settled: [Int64] = []
        for action in actions {
            switch action {
            case .markPublished(let ids): settled += ids
            case .retry(let entry, _, _, _), .park(let entry, _, _): settled.append(entry.id)
            case .holdBack(let held): settled += held.map(\.id)
            }
        }
        #expect(settled.sorted() == ids(batch))
    }

    @Test func aConfirmedEntryNeverFollowsAnUnconfirmedOneOfItsStream() {
        // Every pattern of outcomes over two streams of three entries each.
        let batch = entries(["a", "b", "a", "b", "a", "b"])
        let choices: [PublishOutcome] = [.confirmed, .nacked, Self.returned, Self.lost]
        for pattern in 0..<(choices.count * choices.count * choices.count * choices.count) {
            var outcomes: [Int64: PublishOutcome] = [:]
            var rest = pattern
            for id in Int64(1)...4 {
                outcomes[id] = choices[rest % choices.count]
                rest /= choices.count
            }
            let (waves, actions) = settle(batch, outcomes)
            let sent = waves.flatMap { $0 }
            for stream in ["a", "b"] {
                let ofStream = sent.filter { batch[Int($0) - 1].event.streamID.rawValue == stream }
                let firstFailure = ofStream.firstIndex { (outcomes[$0] ?? .confirmed) != .confirmed }
                if let firstFailure {
                    #expect(firstFailure == ofStream.count - 1, "pattern \(pattern): nothing of \(stream) sent after a failure")
                }
            }
            if case .markPublished(let published) = actions.first {
                #expect(published.allSatisfy { (outcomes[$0] ?? .confirmed) == .confirmed })
            }
        }
    }

    @Test func stoppingEarlyHandsBackTheRestOfTheBatch() {
        let batch = entries(["a", "b", "a", "b"])
        let (waves, actions) = settle(batch, stopAfterWaves: 1)
        #expect(waves == [[1, 2]])
        #expect(actions == [.markPublished([1, 2]), .holdBack([batch[2], batch[3]])])
    }
}
