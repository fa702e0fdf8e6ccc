import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import Foundation
import Testing

/// Sequenced retries and parking: a failing event is retried with backoff while the later
/// events of its source stream wait behind it in the store, and other streams flow.
@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct ConsumerRetryTests {
    /// Events `first...last` of the source stream `stream`, versions 1, 2, …
    private func sequence(_ fixture: ConsumerFixture, _ indices: ClosedRange<Int>, stream: String) -> [OutgoingMessage] {
        indices.enumerated().map { offset, index in fixture.message(index, stream: stream, version: Int64(offset + 1)) }
    }

    @Test func laterEventsOfAFailingStreamWaitInOrderWhileOtherStreamsFlow() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        // Event 102 (version 2 of `ordered`) fails twice, then succeeds. The retry delay is
        // long compared with handling 50 events, so the other streams must all be applied
        // while 102 still waits for its first retry.
        let attempts = Counter()
        let handler = fixture.handler { input in
            if input.as(ItemCounted.self)?.index == 102, attempts.next() <= 2 { throw TestFailure(message: "downstream unavailable") }
        }
        let configuration = fixture.configuration(retryFirstDelay: .seconds(8), retryMaximumDelay: .seconds(8))
        let task = try await fixture.start(fixture.consumer([handler], configuration: configuration))
        defer { task.cancel() }
        try await fixture.publish(sequence(fixture, 101...107, stream: "ordered") + (0..<50).map { fixture.message($0) })

        #expect(try await fixture.eventually { try await (0..<50).asyncAllSatisfy { try await fixture.handledCount($0) == 1 } })
        #expect(attempts.current == 1, "the other streams were applied before the first retry was due")
        #expect(try await fixture.handledCount(101) == 1)
        for index in 102...107 {
            #expect(try await fixture.handledCount(index) == 0, "event \(index) waits behind 102")
        }
        let held = try await fixture.heldEvents()
        #expect(held.map(\.streamVersion) == [2, 3, 4, 5, 6, 7], "102 and every later event of its stream are held, in order")
        #expect(held.first?.attempts == 1)
        #expect(held.first?.lastError == "downstream unavailable")
        #expect(try await fixture.messageCount(ContextTopology.inboxQueue(for: fixture.context)) == 0, "held messages are acked")

        #expect(try await fixture.eventually(timeout: .seconds(60)) { try await fixture.handledCount(107) == 1 })
        #expect(attempts.current == 3)
        let applied = try await fixture.appliedOrder().filter { $0 > 100 }
        #expect(applied == Array(101...107), "the stream's events are applied once each, in stream order")
        #expect(try await fixture.eventually { try await fixture.heldEvents().isEmpty }, "released just after the commit")
        let failures = try await fixture.failures()
        #expect(failures.map(\.attempt) == [1, 2])
        #expect(failures.allSatisfy { $0.error == "downstream unavailable" })
        #expect(try await fixture.messageCount(ContextTopology.deadLetterQueue(for: fixture.context)) == 0)
    }

    @Test func anEventFailingPastTheLimitIsParkedWithItsStreamThenRetriedOrSkipped() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        // 202 fails until fixed; 302 always fails. delivery_limit 3 means 3 attempts.
        let fixed = Flag()
        let attempts = Counter()
        let handler = fixture.handler { input in
            switch input.as(ItemCounted.self)?.index {
            case 202 where !fixed.isSet:
                _ = attempts.next()
                throw TestFailure(message: "bug in 202")
            case 302: throw TestFailure(message: "302 can never apply")
            default: break
            }
        }
        let configuration = fixture.configuration(
            deliveryLimit: 3, retryFirstDelay: .milliseconds(100), retryMaximumDelay: .milliseconds(200))
        let task = try await fixture.start(fixture.consumer([handler], configuration: configuration))
        defer { task.cancel() }
        try await fixture.publish(
            sequence(fixture, 201...204, stream: "fixable") + sequence(fixture, 301...303, stream: "skippable")
                + (0..<20).map { fixture.message($0) })

        #expect(
            try await fixture.eventually {
                try await ContextAdmin.parkedSequences(context: fixture.context, store: fixture.store).count == 2
            })
        for index in 0..<20 {
            #expect(try await fixture.handledCount(index) == 1, "other stream \(index)")
        }
        #expect(attempts.current == 3, "three attempts, no more")
        let parked = try await ContextAdmin.parkedSequences(context: fixture.context, store: fixture.store)
        let fixable = try #require(parked.first { $0.sequence.sourceStream == "fixable" })
        #expect(fixable.sequence.sourceContext == fixture.source)
        #expect(fixable.head.streamVersion == 2)
        #expect(fixable.head.event.typeName == ItemCounted.typeName)
        #expect(try JSONDecoder().decode(ItemCounted.self, from: fixable.head.event.payload) == ItemCounted(index: 202))
        #expect(fixable.head.attempts == 3)
        #expect(fixable.head.lastError == "bug in 202")
        #expect(fixable.waitingBehind == 2)
        #expect(try await fixture.handledCount(201) == 1)
        for index in [202, 203, 204, 302, 303] {
            #expect(try await fixture.handledCount(index) == 0, "event \(index) is parked")
        }
        // Each failure is recorded (in its own commit) before its attempt is counted, so all
        // six are there once both sequences are parked; waiting costs nothing.
        #expect(try await fixture.eventually { try await fixture.failures().filter { $0.eventType == ItemCounted.typeName }.count == 6 })
        #expect(
            try await fixture.messageCount(ContextTopology.deadLetterQueue(for: fixture.context)) == 0, "the dead queue is for poison only")

        // A later event of a parked stream is parked behind it.
        try await fixture.publish([fixture.message(205, stream: "fixable", version: 5)])
        #expect(
            try await fixture.eventually {
                try await ContextAdmin.parkedSequences(context: fixture.context, store: fixture.store)
                    .first { $0.sequence.sourceStream == "fixable" }?.waitingBehind == 3
            })

        fixed.set()
        try await ContextAdmin.retryParked(
            context: fixture.context, sourceContext: fixture.source, sourceStream: "fixable", store: fixture.store)
        #expect(try await fixture.eventually { try await fixture.handledCount(205) == 1 })
        #expect(try await fixture.appliedOrder().filter { (200..<300).contains($0) } == [201, 202, 203, 204, 205])

        let skip = try await ContextAdmin.skipParked(
            context: fixture.context, sourceContext: fixture.source, sourceStream: "skippable", reason: "302 refers to a deleted item",
            store: fixture.store)
        #expect(try await fixture.eventually { try await fixture.handledCount(303) == 1 })
        #expect(try await fixture.handledCount(302) == 0)
        #expect(try await fixture.appliedOrder().filter { (300..<400).contains($0) } == [301, 303])
        #expect(skip.streamVersion == 2)
        let skips = try await ContextAdmin.skippedEvents(context: fixture.context, store: fixture.store)
        #expect(skips.map(\.eventID) == [skip.eventID])
        #expect(skips.first?.sourceStream == "skippable")
        #expect(skips.first?.attempts == 3)
        #expect(skips.first?.reason == "302 refers to a deleted item")
        #expect(skips.first?.lastError == "302 can never apply")
        #expect(try JSONDecoder().decode(ItemCounted.self, from: Data((skips.first?.payload ?? "").utf8)) == ItemCounted(index: 302))
        #expect(try await fixture.eventually { try await fixture.heldEvents().isEmpty }, "released just after the commit")
        #expect(try await ContextAdmin.parkedSequences(context: fixture.context, store: fixture.store).isEmpty)

        await #expect(throws: ParkedSequenceError.self) {
            try await ContextAdmin.skipParked(
                context: fixture.context, sourceContext: fixture.source, sourceStream: "skippable", reason: "again", store: fixture.store)
        }
    }

    @Test func aRestartedConsumerResumesTheHeldSequence() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let fixed = Flag()
        let handler = fixture.handler { input in
            if input.as(ItemCounted.self)?.index == 402, !fixed.isSet { throw TestFailure(message: "not yet") }
        }
        let configuration = fixture.configuration(deliveryLimit: 50, retryFirstDelay: .seconds(1), retryMaximumDelay: .seconds(1))
        let first = try await fixture.start(fixture.consumer([handler], configuration: configuration))
        try await fixture.publish(sequence(fixture, 401...403, stream: "resumed"))
        #expect(try await fixture.eventually { try await fixture.heldEvents().map(\.streamVersion) == [2, 3] })
        first.cancel()
        _ = try? await first.value

        // Published while no consumer runs: it must wait behind the held events after the restart.
        try await fixture.publish([fixture.message(404, stream: "resumed", version: 4)])
        fixed.set()
        let second = try await fixture.start(fixture.consumer([handler], configuration: configuration))
        defer { second.cancel() }
        #expect(try await fixture.eventually { try await fixture.handledCount(404) == 1 })
        #expect(try await fixture.appliedOrder() == [401, 402, 403, 404])
        #expect(try await fixture.eventually { try await fixture.heldEvents().isEmpty }, "released just after the commit")
    }
}

extension Sequence {
    fileprivate func asyncAllSatisfy(_ predicate: (Element) async throws -> Bool) async rethrows -> Bool {
        for element in self where try await !predicate(element) { return false }
        return true
    }
}
