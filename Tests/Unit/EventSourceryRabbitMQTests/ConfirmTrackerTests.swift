@testable import EventSourceryRabbitMQ
import Testing

@Suite struct ConfirmTrackerTests {
    private func publishAll(_ tracker: inout ConfirmTracker, ids: [String?]) {
        for (index, id) in ids.enumerated() where tracker.canPublish {
            tracker.didPublish(index: index, messageId: id)
        }
    }

    @Test func windowLimitsOutstandingMessages() {
        var tracker = ConfirmTracker(count: 5, window: 2, firstTag: 1)
        publishAll(&tracker, ids: ["a", "b", "c", "d", "e"])
        #expect(tracker.publishedCount == 2)
        #expect(!tracker.canPublish)
        tracker.ack(tag: 1, multiple: false)
        #expect(tracker.canPublish)
        #expect(tracker.nextTag == 3)
    }

    @Test func multipleAckResolvesEverythingUpToTheTag() {
        var tracker = ConfirmTracker(count: 4, window: 10, firstTag: 7)
        publishAll(&tracker, ids: ["a", "b", "c", "d"])
        tracker.ack(tag: 9, multiple: true)
        #expect(tracker.resolvedCount == 3)
        tracker.nack(tag: 10, multiple: false)
        #expect(tracker.isComplete)
        #expect(tracker.results == [.confirmed, .confirmed, .confirmed, .nacked])
    }

    @Test func multipleNackAfterSingleAcks() {
        var tracker = ConfirmTracker(count: 4, window: 10, firstTag: 1)
        publishAll(&tracker, ids: ["a", "b", "c", "d"])
        tracker.ack(tag: 2, multiple: false)
        tracker.nack(tag: 4, multiple: true)
        #expect(tracker.results == [.nacked, .confirmed, .nacked, .nacked])
    }

    @Test func returnBeforeAckReportsReturned() {
        var tracker = ConfirmTracker(count: 3, window: 10, firstTag: 1)
        publishAll(&tracker, ids: ["a", "b", "c"])
        tracker.returned(messageId: "b", replyCode: 312, replyText: "NO_ROUTE")
        tracker.ack(tag: 2, multiple: false)
        tracker.ack(tag: 3, multiple: true)
        #expect(tracker.results == [.confirmed, .returned(replyCode: 312, replyText: "NO_ROUTE"), .confirmed])
    }

    @Test func returnWithoutMessageIdMatchesOldestOpenMessageWithoutId() {
        var tracker = ConfirmTracker(count: 3, window: 10, firstTag: 1)
        publishAll(&tracker, ids: ["a", nil, nil])
        tracker.returned(messageId: nil, replyCode: 312, replyText: "NO_ROUTE")
        tracker.ack(tag: 3, multiple: true)
        #expect(tracker.results == [.confirmed, .returned(replyCode: 312, replyText: "NO_ROUTE"), .confirmed])
    }

    @Test func failureMarksEverythingUnconfirmedButKeepsConfirmedOnes() {
        var tracker = ConfirmTracker(count: 4, window: 2, firstTag: 1)
        publishAll(&tracker, ids: ["a", "b", "c", "d"])
        tracker.ack(tag: 1, multiple: false)
        let error = AMQPError(.connectionClosed, "gone")
        tracker.failOutstanding(error)
        #expect(tracker.isComplete)
        #expect(!tracker.canPublish)
        #expect(tracker.results == [.confirmed, .notConfirmed(error), .notConfirmed(error), .notConfirmed(error)])
    }

    @Test func ignoresTagsOutsideTheBatch() {
        var tracker = ConfirmTracker(count: 2, window: 10, firstTag: 5)
        publishAll(&tracker, ids: ["a", "b"])
        tracker.ack(tag: 4, multiple: true)
        tracker.ack(tag: 9, multiple: false)
        #expect(tracker.resolvedCount == 0)
        tracker.ack(tag: 6, multiple: true)
        #expect(tracker.results == [.confirmed, .confirmed])
    }
}
