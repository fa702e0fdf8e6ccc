import EventSourcery
import Foundation
import Testing

/// ``WriteBatch/inheritCausation(from:except:)``: what a consumer does with a handler's events.
struct WriteBatchCausationTests {
    struct Shipped: Event { var order: Int }

    @Test func eventsWithoutACauseBecomeConsequencesOfTheCause() throws {
        let flow = UUID()
        let cause = EventEnvelope(
            Shipped(order: 0), metadata: EventMetadata(correlationID: flow, traceContext: ["traceparent": "00-abc-def-01"]))
        let other = EventEnvelope(Shipped(order: 9))
        let earlier = EventEnvelope(Shipped(order: 1))
        var batch = WriteBatch()
        try batch.append([earlier], to: "shipment-1")
        let before = batch.eventIDs
        let plain = EventEnvelope(Shipped(order: 2))
        let ownFlow = EventEnvelope(Shipped(order: 3), metadata: EventMetadata(correlationID: UUID()))
        let explicit = EventEnvelope(Shipped(order: 4), metadata: .causedBy(other))
        try batch.publish([plain, ownFlow, explicit], to: "shipment-2")

        batch.inheritCausation(from: cause, except: before)

        let metadata = Dictionary(uniqueKeysWithValues: batch.appends.flatMap(\.events).map { ($0.id, $0.metadata) })
        #expect(metadata[earlier.id] == earlier.metadata, "an event of the batch from before is left alone")
        #expect(
            metadata[plain.id] == EventMetadata(correlationID: flow, causationID: cause.id, traceContext: ["traceparent": "00-abc-def-01"]))
        #expect(metadata[ownFlow.id]?.correlationID == ownFlow.metadata.correlationID, "an explicit correlation id is kept")
        #expect(metadata[ownFlow.id]?.causationID == cause.id)
        #expect(metadata[explicit.id] == explicit.metadata, "an event with a cause keeps it")
    }
}
