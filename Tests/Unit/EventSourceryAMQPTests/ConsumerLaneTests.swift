@testable import EventSourceryRabbitMQ
@testable import EventSourceryAMQP
import Foundation
import Testing

/// How a consumer lane cuts the deliveries waiting for it into batches, without a broker.
struct ConsumerLaneTests {
    private func delivery(_ tag: UInt64) -> Delivery {
        Delivery(
            body: Data(), properties: AMQPProperties(), exchange: "x", routingKey: "r",
            isRedelivered: false, deliveryTag: tag, consumerTag: "test", generation: 1
        )
    }

    private func tags(_ batch: [Delivery]) -> [UInt64] { batch.map(\.deliveryTag) }

    @Test func aBatchTakesTheEarliestDeliveryOfEachStreamAndKeepsTheRestInOrder() async {
        let lane = ConsumerLane(batchLimit: 10)
        for (tag, stream) in zip(1..., ["a", "b", "a", "c", "b", "a"]) {
            lane.put(delivery(UInt64(tag)), stream: stream)
        }
        #expect(tags(await lane.next()) == [1, 2, 4])
        #expect(tags(await lane.next()) == [3, 5])
        #expect(tags(await lane.next()) == [6])
    }

    @Test func aBatchHoldsAtMostTheLimit() async {
        let lane = ConsumerLane(batchLimit: 2)
        for (tag, stream) in zip(1..., ["a", "b", "c", "a", "d"]) {
            lane.put(delivery(UInt64(tag)), stream: stream)
        }
        #expect(tags(await lane.next()) == [1, 2])
        #expect(tags(await lane.next()) == [3, 4])
        #expect(tags(await lane.next()) == [5])
    }

    @Test func aWaitingLaneWakesForTheNextDeliveryAndEndsWhenFinished() async {
        let lane = ConsumerLane(batchLimit: 10)
        let first = Task { await lane.next() }
        try? await Task.sleep(for: .milliseconds(50))
        lane.put(delivery(1), stream: "a")
        #expect(tags(await first.value) == [1])
        lane.put(delivery(2), stream: "a")
        lane.finish()
        #expect(tags(await lane.next()) == [2], "what waits is still handed out after finish")
        #expect(await lane.next().isEmpty)
        let waiting = Task { await lane.next() }
        #expect(await waiting.value.isEmpty)
    }

    @Test func aWaitingLaneEndsWhenFinished() async {
        let lane = ConsumerLane(batchLimit: 10)
        let waiting = Task { await lane.next() }
        try? await Task.sleep(for: .milliseconds(50))
        lane.finish()
        #expect(await waiting.value.isEmpty)
    }
}
