@testable import EventSourceryRabbitMQ
import TestSupport
import EventSourcery
@testable import EventSourceryAMQP
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

    /// The verdict of reading and decoding `message`: `nil` when it is accepted.
    private func verdict(_ message: OutgoingMessage, exchange: String? = nil, routingKey: String? = nil) -> PoisonMessage? {
        let delivery = relabel(delivery(message), exchange: exchange ?? message.exchange, routingKey: routingKey ?? message.routingKey)
        do {
            _ = try EventMessage.decode(delivery, registry: EventRegistry([ItemCounted.self, ItemHandled.self]))
            return nil
        } catch {
            return error
        }
    }

    private func relabel(_ delivery: Delivery, exchange: String, routingKey: String) -> Delivery {
        Delivery(
            body: delivery.body, properties: delivery.properties, exchange: exchange, routingKey: routingKey, isRedelivered: false,
            deliveryTag: 1, consumerTag: "test", generation: 1)
    }

    @Test func theSourceContextIsTheExchangeAndAppIDIsInformational() throws {
        var message = EventMessage.outgoing(try recorded(), context: "order")
        message.properties.appId = "shop"
        #expect(try EventMessage.incoming(delivery(message)).sourceContext == "order")
        message.properties.appId = nil
        #expect(try EventMessage.incoming(delivery(message)).sourceContext == "order")
    }

    @Test func aMessagePutStraightIntoAQueueNamesItsSourceWithAppID() throws {
        var message = EventMessage.outgoing(try recorded(), context: "payment")
        let replayed = relabel(delivery(message), exchange: "", routingKey: "invoice.inbox")
        #expect(try EventMessage.incoming(replayed).sourceContext == "payment")
        message.properties.appId = nil
        #expect(verdict(message, exchange: "", routingKey: "invoice.inbox")?.code == .misrouted)
    }

    @Test func aMessageReplayedThroughThePartitionExchangeNamesItsSourceWithAppID() throws {
        let message = EventMessage.outgoing(try recorded(), context: "payment")
        let replayed = relabel(delivery(message), exchange: "invoice.partitions", routingKey: "")
        let registry = EventRegistry([ItemCounted.self])
        let decoded = try EventMessage.decode(replayed, registry: registry, directExchanges: ["invoice.partitions"])
        #expect(decoded.incoming.sourceContext == "payment")
        #expect(throws: PoisonMessage.self) { try EventMessage.decode(replayed, registry: registry) }
    }

    @Test func aMessageOffTheContractsRouteIsMisrouted() throws {
        let message = EventMessage.outgoing(try recorded(), context: "order")
        let otherType = verdict(message, routingKey: "order.ItemHandled")
        #expect(otherType?.code == .misrouted)
        #expect(otherType?.detail.contains("'order.ItemCounted'") == true)
        #expect(verdict(message, routingKey: "payment.ItemCounted")?.code == .misrouted)
        #expect(verdict(message, exchange: "amq.topic")?.code == .misrouted)
        #expect(verdict(message, exchange: ".events")?.code == .misrouted)
        #expect(verdict(message) == nil)
    }

    @Test(arguments: [
        (EventMessage.Header.schemaVersion, AMQPFieldValue.string("2"), "invalidHeaders"),
        (EventMessage.Header.schemaVersion, .int64(0), "invalidHeaders"),
        (EventMessage.Header.schemaVersion, .double(2), "invalidHeaders"),
        (EventMessage.Header.streamVersion, .string("3"), "invalidHeaders"),
        (EventMessage.Header.streamVersion, .int32(-1), "invalidHeaders"),
        (EventMessage.Header.streamVersion, .bool(true), "invalidHeaders"),
        (EventMessage.Header.streamID, .int64(42), "invalidHeaders"),
        (EventMessage.Header.streamID, .string(""), "invalidHeaders"),
        (EventMessage.Header.causationID, .string("not-a-uuid"), "invalidHeaders"),
        (EventMessage.Header.causationID, .int64(1), "invalidHeaders"),
    ])
    func wronglyTypedContractHeadersArePoison(_ header: String, _ value: AMQPFieldValue, _ reason: String) throws {
        var message = EventMessage.outgoing(try recorded(), context: "order")
        message.properties.headers?[header] = value
        let poison = try #require(verdict(message))
        #expect(poison.code.reason == reason)
        #expect(poison.detail.contains(header))
    }

    @Test func contractHeadersOfTheRightTypeAreRead() throws {
        let message = EventMessage.outgoing(try recorded(), context: "order")
        let two = try EventMessage.incoming(delivery(message, headers: [EventMessage.Header.schemaVersion: .int32(2)]))
        #expect(two.event.schemaVersion == 2)
        var withoutSchema = message
        withoutSchema.properties.headers?[EventMessage.Header.schemaVersion] = nil
        #expect(try EventMessage.incoming(delivery(withoutSchema)).event.schemaVersion == 1, "absent means 1")
        let small = try EventMessage.incoming(delivery(message, headers: [EventMessage.Header.streamVersion: .int32(7)]))
        #expect(small.streamVersion == 7)
    }

    @Test func onlyTheContractsHeadersBecomeMetadata() throws {
        let traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        let message = EventMessage.outgoing(try recorded(), context: "order")
        let incoming = try EventMessage.incoming(
            delivery(
                message,
                headers: ["traceparent": .string(traceParent), "evil": "injected", "content-type": "text/html", "x-custom": "value"]))
        #expect(incoming.event.metadata.traceContext == ["traceparent": traceParent])
        #expect(incoming.invalidTraceParent == nil)
    }

    @Test func anInvalidTraceParentIsDroppedAndReported() throws {
        let message = EventMessage.outgoing(try recorded(), context: "order")
        let incoming = try EventMessage.incoming(delivery(message, headers: ["traceparent": "garbage-not-w3c", "evil": "injected"]))
        #expect(incoming.event.metadata.traceContext.isEmpty)
        #expect(incoming.invalidTraceParent?.contains("garbage-not-w3c") == true)
        let typed = try EventMessage.incoming(delivery(message, headers: ["traceparent": .int64(1)]))
        #expect(typed.event.metadata.traceContext.isEmpty)
        #expect(typed.invalidTraceParent != nil)
    }

    @Test(arguments: [
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", true),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", true),
        ("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future", true),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", false),
        ("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", false),
        ("00-00000000000000000000000000000000-b7ad6b7169203331-01", false),
        ("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", false),
        ("00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", false),
        ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01", false),
        ("00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01", false),
        ("garbage-not-w3c", false),
        ("", false),
    ])
    func recognisesW3CTraceParents(_ text: String, _ valid: Bool) {
        #expect(EventMessage.isW3CTraceParent(text) == valid)
    }

    @Test func outgoingMessagesCarryOnlyTheContractsTraceHeader() throws {
        let traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        let event = try recorded(
            metadata: EventMetadata(traceContext: ["traceparent": traceParent, "evil": "injected", EventMessage.Header.streamID: "spoofed"])
        )
        let headers = try #require(EventMessage.outgoing(event, context: "order").properties.headers)
        #expect(
            Set(headers.keys) == [
                EventMessage.Header.streamID, EventMessage.Header.streamVersion, EventMessage.Header.schemaVersion, "traceparent",
            ])
        #expect(headers[EventMessage.Header.streamID]?.stringValue == "item-42")
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
