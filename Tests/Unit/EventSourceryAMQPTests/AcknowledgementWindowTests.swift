@testable import EventSourceryRabbitMQ
@testable import EventSourceryAMQP
import Foundation
import Testing

/// The acknowledgement window's decisions, without a broker.
struct AcknowledgementWindowTests {
    private typealias Action = AcknowledgementWindow.Action

    private func delivery(_ tag: UInt64, generation: UInt64 = 1) -> Delivery {
        Delivery(
            body: Data(), properties: AMQPProperties(), exchange: "x", routingKey: "r",
            isRedelivered: false, deliveryTag: tag, consumerTag: "test", generation: generation
        )
    }

    /// A window with deliveries 1...count registered.
    private func window(_ count: UInt64, batchSize: Int = 1) -> AcknowledgementWindow {
        var window = AcknowledgementWindow(batchSize: batchSize)
        for tag in 1...count { window.register(delivery(tag)) }
        return window
    }

    private func acked(_ tags: [UInt64], _ window: inout AcknowledgementWindow) -> [Action] {
        window.settle(tags.map { (delivery($0), true) })
    }

    @Test func settlingInArrivalOrderAcksEachAtOnce() {
        var window = window(3)
        #expect(acked([1], &window) == [.ack(delivery(1), multiple: false)])
        #expect(acked([2], &window) == [.ack(delivery(2), multiple: false)])
        #expect(acked([3], &window) == [.ack(delivery(3), multiple: false)])
        #expect(window.flush().isEmpty)
        #expect(window.flushAll().isEmpty)
    }

    @Test func theWindowIsIdleOnceEverythingRegisteredIsAcknowledged() {
        var window = window(3, batchSize: 10)
        #expect(!window.isIdle)
        _ = acked([1, 3], &window)
        #expect(!window.isIdle, "2 is in progress")
        _ = acked([2], &window)
        #expect(!window.isIdle, "settled, but the batched ack is not sent")
        #expect(window.flush() == [.ack(delivery(3), multiple: true)])
        #expect(window.isIdle)
        #expect(AcknowledgementWindow(batchSize: 1).isIdle)
    }

    @Test func aMultipleAckNeverCoversADeliveryStillInProgress() {
        var window = window(5)
        // 2, 3 and 5 finish while 1 and 4 are in progress: nothing may be acked yet.
        #expect(acked([2, 3, 5], &window).isEmpty)
        #expect(window.flush().isEmpty)
        // 1 finishes: 1...3 are settled, 4 is not; the ack stops at 3.
        #expect(acked([1], &window) == [.ack(delivery(3), multiple: true)])
        #expect(acked([4], &window) == [.ack(delivery(5), multiple: true)])
    }

    @Test func outOfOrderSettlementInOneCallAcksTheSettledPrefix() {
        var window = window(4)
        #expect(window.settle([(delivery(3), true), (delivery(1), true), (delivery(2), true)]) == [.ack(delivery(3), multiple: true)])
        #expect(acked([4], &window) == [.ack(delivery(4), multiple: false)])
    }

    @Test func aRequeueIsSentAtOnceAndTheAckAroundItIsNotMultipleOverIt() {
        var window = window(3)
        #expect(window.settle([(delivery(2), false)]) == [.requeue(delivery(2))])
        // 1 and 3 acked: the prefix is 1...3, but only 1 and 3 stand for acks. A multiple ack
        // up to 3 covers 2 as well, which the broker already took back with the requeue.
        #expect(acked([1, 3], &window) == [.ack(delivery(3), multiple: true)])
    }

    @Test func aRequeueOfTheOnlySettledDeliveryAcksNothing() {
        var window = window(2)
        #expect(window.settle([(delivery(1), false)]) == [.requeue(delivery(1))])
        #expect(window.flush().isEmpty)
        #expect(acked([2], &window) == [.ack(delivery(2), multiple: false)])
    }

    @Test func batchedAcksWaitForTheBatchSizeOrAFlush() {
        var window = window(5, batchSize: 3)
        #expect(acked([1, 2], &window).isEmpty)
        #expect(acked([3], &window) == [.ack(delivery(3), multiple: true)])
        #expect(acked([4], &window).isEmpty)
        #expect(window.flush() == [.ack(delivery(4), multiple: false)])
        #expect(window.flush().isEmpty, "a flush sends each ack once")
        #expect(acked([5], &window).isEmpty)
        #expect(window.flushAll() == [.ack(delivery(5), multiple: false)])
    }

    @Test func flushAllAcksSettledDeliveriesBehindOneInProgressEachOnItsOwn() {
        var window = window(5, batchSize: 10)
        #expect(acked([1, 3, 5], &window).isEmpty)
        #expect(window.settle([(delivery(4), false)]) == [.requeue(delivery(4))])
        #expect(
            window.flushAll() == [
                .ack(delivery(1), multiple: false), .ack(delivery(3), multiple: false), .ack(delivery(5), multiple: false),
            ])
        #expect(window.flushAll().isEmpty, "nothing is acked twice")
        // 2 is still in progress and stays registered: it is acked when it settles.
        #expect(window.settle([(delivery(2), true)]) == [])
        #expect(window.flush() == [.ack(delivery(2), multiple: false)])
    }

    @Test func unknownAndAlreadySettledDeliveriesAreIgnored() {
        var window = window(2)
        #expect(acked([9], &window).isEmpty)
        #expect(acked([1], &window) == [.ack(delivery(1), multiple: false)])
        #expect(acked([1], &window).isEmpty, "settling twice acks once")
        #expect(window.settle([(delivery(2), true), (delivery(2), false)]) == [.ack(delivery(2), multiple: false)])
    }

    @Test func afterAConnectionRecoveryDeliveriesOfBothConnectionsAreFoundAndAckedInArrivalOrder() {
        var window = AcknowledgementWindow(batchSize: 1)
        // The old connection's tags 7 and 8, then the new connection's 1 and 2.
        let old = [delivery(7), delivery(8)]
        let new = [delivery(1, generation: 2), delivery(2, generation: 2)]
        for delivery in old + new { window.register(delivery) }
        #expect(window.settle([(new[0], true), (old[1], true)]).isEmpty, "7 is still in progress")
        #expect(window.settle([(old[0], true)]) == [.ack(new[0], multiple: true)])
        #expect(window.settle([(new[1], true)]) == [.ack(new[1], multiple: false)])
    }
}
