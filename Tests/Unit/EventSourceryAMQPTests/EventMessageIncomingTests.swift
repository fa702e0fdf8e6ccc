@testable import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
import EventSourceryAMQP
import Foundation
import Testing

/// The incoming half of the wire contract, without a broker.
struct EventMessageIncomingTests {
    private func delivery(_ message: OutgoingMessage, headers extra: AMQPTable = [:]) -> Delivery {
        var properties = message.properties
        properties.headers = (properties.headers ?? [:]).merging(extra) { $1 }
        return Delivery(
            body: message.body, properties: properties, exchange: message.exchange, routingKey: message.routingKey,
            isRedelivered: false, deliveryTag: 1, consumerTag: "test", generation: 1
        )
    }

    private func recorded(metadata: EventMetadata = EventMetadata()) throws -> RecordedEvent {
        let envelope = EventEnvelope(ItemCounted(index: 42), createdAt: Date(timeIntervalSince1970: 1_700_000_000.75), metadata: metadata)
        return RecordedEvent(streamID: "item-42", streamVersion: 3, position: 17, event: try EventRegistry.encode(envelope))
    }

    @Test func roundTripsTheOutgoingMessage() throws {
        let cause = UUID()
        let correlation = UUID()
        let event = try recorded(
            metadata: EventMetadata(
                correlationID: correlation, causationID: cause,
                traceContext: ["traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"]
            ))
        let message = EventMessage.outgoing(event, context: "order")
        let incoming = try EventMessage.incoming(
            delivery(message, headers: [EventMessage.deliveryCountHeader: .int64(2)]), registry: EventRegistry([ItemCounted.self]))
        #expect(incoming.sourceContext == "order")
        #expect(incoming.streamID == "item-42")
        #expect(incoming.streamVersion == 3)
        #expect(incoming.previousDeliveries == 2)
        #expect(incoming.event.id == event.event.id)
        #expect(incoming.event.typeName == "ItemCounted")
        #expect(incoming.event.schemaVersion == 1)
        #expect(incoming.event.createdAt == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(incoming.event.metadata == event.event.metadata)
        #expect(incoming.event.payload == event.event.payload)
        let decoded = try EventRegistry([ItemCounted.self]).decode(incoming.event)
        #expect(decoded.as(ItemCounted.self) == ItemCounted(index: 42))
    }

    @Test func theSourceContextFallsBackToTheExchange() throws {
        var message = EventMessage.outgoing(try recorded(), context: "payment")
        message.properties.appId = nil
        #expect(try EventMessage.incoming(delivery(message)).sourceContext == "payment")
    }

    @Test(arguments: [
        ("missingMessageID", PoisonMessage.Code.missingMessageID),
        ("invalidMessageID", .invalidMessageID),
        ("wrongContentType", .wrongContentType),
        ("oversizedBody", .oversizedBody),
        ("malformedJSON", .malformedJSON),
        ("unknownEventType", .unknownEventType),
        ("missingHeaders", .missingHeaders),
    ])
    func rejectsPoison(_ reason: String, _ code: PoisonMessage.Code) throws {
        var message = EventMessage.outgoing(try recorded(), context: "order")
        switch code {
        case .missingMessageID: message.properties.messageId = nil
        case .invalidMessageID: message.properties.messageId = "42"
        case .wrongContentType: message.properties.contentType = "application/xml"
        case .oversizedBody: message.body = Data(repeating: 0x20, count: 2048)
        case .malformedJSON: message.body = Data("{\"index\":".utf8)
        case .unknownEventType: message.properties.type = "Unheard"
        default: message.properties.headers?[EventMessage.Header.streamVersion] = nil
        }
        #expect(code.reason == reason)
        // The same verdict from reading the message alone and from reading and decoding it.
        let readers: [(String, () throws -> Void)] = [
            (
                "incoming",
                {
                    _ = try EventMessage.incoming(
                        self.delivery(message), maximumBodySize: 1024, registry: EventRegistry([ItemCounted.self]))
                }
            ),
            (
                "decode",
                { _ = try EventMessage.decode(self.delivery(message), maximumBodySize: 1024, registry: EventRegistry([ItemCounted.self])) }
            ),
        ]
        for (name, read) in readers {
            #expect(throws: PoisonMessage.self, "\(name)") {
                do {
                    try read()
                } catch let error as PoisonMessage {
                    #expect(error.code == code, "\(name)")
                    throw error
                }
            }
        }
    }

    @Test func aBodyThatIsJSONButNotTheEventIsUndecodable() throws {
        var message = EventMessage.outgoing(try recorded(), context: "order")
        message.body = Data(#"{"index":"forty-two"}"#.utf8)
        do {
            _ = try EventMessage.decode(delivery(message), registry: EventRegistry([ItemCounted.self]))
            Issue.record("decoded a payload of the wrong shape")
        } catch {
            #expect(error.code == .undecodablePayload)
            #expect(error.detail.contains("ItemCounted"))
        }
    }

    @Test(arguments: [
        ("application/json", true), ("Application/JSON", true), (" application/json ; charset=utf-8", true),
        ("application/json;charset=utf-8", true), ("application/jsonx", false), ("text/plain", false), ("", false),
    ])
    func acceptsJSONContentTypes(_ contentType: String, _ accepted: Bool) throws {
        var message = EventMessage.outgoing(try recorded(), context: "order")
        message.properties.contentType = contentType
        let code: PoisonMessage.Code?
        do {
            _ = try EventMessage.decode(delivery(message), registry: EventRegistry([ItemCounted.self]))
            code = nil
        } catch {
            code = error.code
        }
        #expect(code == (accepted ? nil : .wrongContentType))
    }
}
