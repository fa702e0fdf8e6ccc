import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import Foundation
import Testing

/// Actions with conditions, visible: a skip is recorded as data, listed, and an operator can
/// force the handler to run for the skipped event.
@Suite(.timeLimit(.minutes(2)), .requiresBroker)
struct HandlerConditionTests {
    @Test func aSkippedHandlerIsRecordedAndCanBeForcedToRunOnce() async throws {
        let fixture = try await ConsumerFixture()
        defer { Task { await fixture.tearDown() } }
        let even = HandlerCondition("index is even") { input in (input.as(ItemCounted.self)?.index ?? 1) % 2 == 0 }
        var handler = fixture.handler()
        handler.conditions = [even]
        let consumer = fixture.consumer([handler])
        let task = try await fixture.start(consumer)
        defer { task.cancel() }
        let skippedID = UUID()
        try await fixture.publish([fixture.message(2), fixture.message(3, id: skippedID)])
        #expect(
            try await fixture.eventually {
                try await ContextAdmin.skippedHandlers(context: fixture.context, store: fixture.store).count == 1
            })
        #expect(try await fixture.eventually { try await fixture.handledCount(2) == 1 })
        let skips = try await ContextAdmin.skippedHandlers(context: fixture.context, store: fixture.store)
        #expect(skips.map(\.handler) == ["count"])
        #expect(skips.map(\.condition) == ["index is even"])
        #expect(skips.map(\.eventID) == [skippedID])
        #expect(skips.map(\.eventType) == ["ItemCounted"])
        #expect(skips.map(\.sourceContext) == [fixture.source])
        #expect(skips.map(\.sourceStream) == ["item-3"])
        #expect(try await fixture.handledCount(3) == 0)

        // A redelivery does not evaluate the condition again, nor record a second skip.
        try await fixture.publish([fixture.message(3, id: skippedID)])
        try await waitUntil(timeout: .seconds(10)) { try await fixture.messageCount(consumer.topology.inboxQueue) == 0 }
        #expect(try await ContextAdmin.skippedHandlers(context: fixture.context, store: fixture.store).count == 1)

        let rerun = try await consumer.rerun(handler: "count", eventID: skippedID, reason: "the rule changed")
        #expect(try await fixture.handledCount(3) == 1, "forced past its condition")
        let handled = try await fixture.store.load("handled-3")
        #expect(handled.first?.envelope.metadata.causationID == skippedID)
        let reruns = try await ContextAdmin.reruns(context: fixture.context, store: fixture.store)
        #expect(reruns.map(\.rerunID) == [rerun.rerunID])
        #expect(reruns.map(\.handler) == ["count"])
        #expect(reruns.map(\.eventID) == [skippedID])
        #expect(rerun.reason == "the rule changed")

        await #expect(throws: HandlerRerunError.self) { try await consumer.rerun(handler: "count", eventID: UUID(), reason: "none") }
        await #expect(throws: HandlerRerunError.self) { try await consumer.rerun(handler: "nobody", eventID: skippedID, reason: "none") }
    }
}
