import EventSourcery
import Foundation
import Testing

@Suite struct EventRegistryTests {
    struct ItemAdded: Event, Equatable {
        static var typeName: String { "cart.ItemAdded" }
        static var schemaVersion: Int { 3 }
        var sku: String
        var quantity: Int
    }

    struct PlainEvent: Event {}

    private func encoded(_ json: String, version: Int, type: String = "cart.ItemAdded") -> EncodedEvent {
        EncodedEvent(
            id: UUID(), typeName: type, schemaVersion: version, createdAt: Date(), metadata: EventMetadata(), payload: Data(json.utf8))
    }

    private var registry: EventRegistry {
        var registry = EventRegistry([ItemAdded.self])
        // v1 had "item"; v2 renamed it to "sku"; v3 added "quantity".
        registry.registerUpcaster(for: ItemAdded.self, from: 1) { json in
            var json = json
            json["sku"] = json["item"]
            json["item"] = nil
            return json
        }
        registry.registerUpcaster(for: ItemAdded.self, from: 2) { json in
            var json = json
            json["quantity"] = .number(1)
            return json
        }
        return registry
    }

    @Test func defaultTypeNameAndVersion() {
        #expect(PlainEvent.typeName == "PlainEvent")
        #expect(PlainEvent.schemaVersion == 1)
        #expect(ItemAdded.typeName == "cart.ItemAdded")
    }

    @Test func upcastsThroughEveryVersion() throws {
        let fromV1 = try registry.decode(encoded(#"{"item":"apple"}"#, version: 1))
        #expect(fromV1.as(ItemAdded.self) == ItemAdded(sku: "apple", quantity: 1))
        let fromV2 = try registry.decode(encoded(#"{"sku":"pear"}"#, version: 2))
        #expect(fromV2.as(ItemAdded.self) == ItemAdded(sku: "pear", quantity: 1))
        let current = try registry.decode(encoded(#"{"sku":"fig","quantity":4}"#, version: 3))
        #expect(current.as(ItemAdded.self) == ItemAdded(sku: "fig", quantity: 4))
    }

    @Test func newerStoredVersionIsATypedError() throws {
        let error = try #require(throws: EventStoreError.self) { try registry.decode(encoded("{}", version: 4)) }
        #expect(error.code == .missingUpcaster)
        #expect(error.message.contains("newer"))
    }

    @Test func missingStepIsATypedError() throws {
        let partial = EventRegistry([ItemAdded.self])
        let error = try #require(throws: EventStoreError.self) { try partial.decode(encoded(#"{"sku":"x"}"#, version: 2)) }
        #expect(error.code == .missingUpcaster)
        #expect(error.message.contains("from version 2 to 3"))
    }

    @Test func unknownTypeAndBadJSONAreTypedErrors() throws {
        let unknown = try #require(throws: EventStoreError.self) { try registry.decode(encoded("{}", version: 1, type: "Nope")) }
        #expect(unknown.code == .unknownEventType)
        #expect(unknown.message.contains("register"))
        let malformed = try #require(throws: EventStoreError.self) { try registry.decode(encoded("{not json", version: 3)) }
        #expect(malformed.code == .undecodablePayload)
    }

    @Test func encodingKeepsEnvelopeFields() throws {
        let cause = EventEnvelope(PlainEvent())
        let envelope = EventEnvelope(ItemAdded(sku: "a", quantity: 2), metadata: .causedBy(cause))
        let encoded = try EventRegistry.encode(envelope)
        #expect(encoded.id == envelope.id)
        #expect(encoded.typeName == "cart.ItemAdded")
        #expect(encoded.schemaVersion == 3)
        #expect(encoded.metadata.causationID == cause.id)
        #expect(encoded.metadata.correlationID == cause.id)
        #expect(try registry.decode(encoded).as(ItemAdded.self) == ItemAdded(sku: "a", quantity: 2))
    }

    @Test func jsonValueRoundTrips() throws {
        let json = #"{"a":[1,2.5,"x",true,null],"b":{"c":"d"}}"#
        let value = try JSONDecoder().decode(JSONValue.self, from: Data(json.utf8))
        #expect(value["b"]?["c"] == .string("d"))
        #expect(value["a"] == .array([.number(1), .number(2.5), .string("x"), .bool(true), .null]))
        let again = try JSONDecoder().decode(JSONValue.self, from: try JSONEncoder().encode(value))
        #expect(again == value)
    }
}
