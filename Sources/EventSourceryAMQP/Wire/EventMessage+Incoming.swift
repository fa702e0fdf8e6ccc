public import EventSourceryRabbitMQ
public import EventSourcery
public import Foundation

extension EventMessage {
    /// The header the consumer sets on a poison message it dead-letters: the reason code.
    public static let deathReasonHeader = "x-death-reason"
    /// The header the consumer sets on a poison message it dead-letters: what is wrong.
    public static let deathDetailHeader = "x-death-detail"
    /// The header a quorum queue sets on redeliveries: how often the message was delivered before.
    public static let deliveryCountHeader = "x-delivery-count"
    /// The default largest body a consumer accepts: 1 MiB.
    public static let defaultMaximumBodySize = 1 << 20

    /// Reads the event carried by a delivery: the incoming half of the wire contract.
    ///
    /// - Parameters:
    ///   - delivery: The delivery.
    ///   - maximumBodySize: The largest body accepted, in bytes.
    ///   - registry: When given, a type name it does not know is ``PoisonMessage/Code/unknownEventType``.
    /// - Returns: The event with its source context, stream id and version.
    /// - Throws: ``PoisonMessage`` naming what is wrong.
    public static func incoming(
        _ delivery: Delivery, maximumBodySize: Int = EventMessage.defaultMaximumBodySize, registry: EventRegistry? = nil
    ) throws(PoisonMessage) -> IncomingEvent {
        try incoming(
            body: delivery.body, properties: delivery.properties, exchange: delivery.exchange,
            maximumBodySize: maximumBodySize, registry: registry
        )
    }

    /// Reads the event carried by a delivery and decodes it through `registry` (upcasters
    /// included): what a consumer does with each delivery.
    ///
    /// The body is parsed once, by the decoder; only a body that does not decode is checked
    /// for being JSON at all, to tell ``PoisonMessage/Code/malformedJSON`` from
    /// ``PoisonMessage/Code/undecodablePayload``.
    ///
    /// - Throws: ``PoisonMessage`` naming what is wrong.
    public static func decode(
        _ delivery: Delivery, maximumBodySize: Int = EventMessage.defaultMaximumBodySize, registry: EventRegistry
    ) throws(PoisonMessage) -> (incoming: IncomingEvent, envelope: EventEnvelope) {
        let incoming = try incoming(
            body: delivery.body, properties: delivery.properties, exchange: delivery.exchange,
            maximumBodySize: maximumBodySize, registry: registry, checksJSON: false
        )
        do {
            return (incoming, try registry.decode(incoming.event))
        } catch {
            try checkJSON(delivery.body)
            throw error.code == .unknownEventType
                ? PoisonMessage(.unknownEventType, detail: error.message)
                : PoisonMessage(.undecodablePayload, detail: error.message)
        }
    }

    /// Whether a content type is `application/json`, ignoring case, surrounding blanks and
    /// parameters such as `; charset=utf-8`.
    static func isJSONContentType(_ contentType: String) -> Bool {
        if contentType == Self.contentType { return true }
        let mediaType = contentType.utf8.prefix { $0 != UInt8(ascii: ";") }
        let trimmed = mediaType.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            .reversed().drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }.reversed()
        return String(decoding: trimmed, as: UTF8.self).lowercased() == Self.contentType
    }

    private static func checkJSON(_ body: Data) throws(PoisonMessage) {
        do {
            _ = try JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed])
        } catch {
            throw PoisonMessage(.malformedJSON, detail: "the body is not JSON: \(error.localizedDescription)")
        }
    }

    /// Reads the event carried by a message's body and properties; see ``incoming(_:maximumBodySize:registry:)``.
    ///
    /// - Parameter exchange: The exchange it was published to; names the source context when
    ///   `app_id` is missing.
    public static func incoming(
        body: Data,
        properties: AMQPProperties,
        exchange: String,
        maximumBodySize: Int = EventMessage.defaultMaximumBodySize,
        registry: EventRegistry? = nil
    ) throws(PoisonMessage) -> IncomingEvent {
        try incoming(
            body: body, properties: properties, exchange: exchange, maximumBodySize: maximumBodySize, registry: registry, checksJSON: true)
    }

    private static func incoming(
        body: Data, properties: AMQPProperties, exchange: String, maximumBodySize: Int, registry: EventRegistry?, checksJSON: Bool
    ) throws(PoisonMessage) -> IncomingEvent {
        guard let messageID = properties.messageId, !messageID.isEmpty else {
            throw PoisonMessage(.missingMessageID, detail: "the message has no message_id; it cannot be deduplicated")
        }
        guard let id = UUID.parse(messageID) else {
            throw PoisonMessage(.invalidMessageID, detail: "message_id '\(messageID.prefix(80))' is not a UUID")
        }
        guard let contentType = properties.contentType, Self.isJSONContentType(contentType) else {
            throw PoisonMessage(
                .wrongContentType, detail: "content_type is '\(properties.contentType ?? "none")', expected '\(Self.contentType)'")
        }
        guard body.count <= maximumBodySize else {
            throw PoisonMessage(.oversizedBody, detail: "the body has \(body.count) bytes; the limit is \(maximumBodySize)")
        }
        if checksJSON { try checkJSON(body) }
        guard let typeName = properties.type, !typeName.isEmpty else {
            throw PoisonMessage(.missingHeaders, detail: "the message has no type property")
        }
        if let registry, registry.type(named: typeName) == nil {
            throw PoisonMessage(.unknownEventType, detail: "no event type '\(typeName)' is registered in this consumer")
        }
        let headers = properties.headers ?? [:]
        guard let streamText = headers[Header.streamID]?.stringValue, let streamID = try? StreamID(streamText) else {
            throw PoisonMessage(.missingHeaders, detail: "header \(Header.streamID) is missing or not a valid stream id")
        }
        guard let streamVersion = headers[Header.streamVersion]?.intValue else {
            throw PoisonMessage(.missingHeaders, detail: "header \(Header.streamVersion) is missing or not an integer")
        }
        let sourceContext: String
        if let appID = properties.appId, !appID.isEmpty {
            sourceContext = appID
        } else if exchange.hasSuffix(".events"), exchange.count > ".events".count {
            sourceContext = String(exchange.dropLast(".events".count))
        } else {
            throw PoisonMessage(.missingHeaders, detail: "no app_id and the exchange '\(exchange)' names no source context")
        }
        var traceContext: [String: String] = [:]
        for (key, value) in headers where !key.hasPrefix("x-") {
            if let text = value.stringValue { traceContext[key] = text }
        }
        let metadata = EventMetadata(
            correlationID: properties.correlationId.flatMap(UUID.parse),
            causationID: headers[Header.causationID]?.stringValue.flatMap(UUID.parse),
            traceContext: traceContext
        )
        let event = EncodedEvent(
            id: id,
            typeName: typeName,
            schemaVersion: headers[Header.schemaVersion]?.intValue ?? 1,
            createdAt: properties.timestamp ?? Date(),
            metadata: metadata,
            payload: body
        )
        return IncomingEvent(
            sourceContext: sourceContext,
            streamID: streamID,
            streamVersion: Int64(streamVersion),
            event: event,
            previousDeliveries: headers[deliveryCountHeader]?.intValue ?? 0
        )
    }
}
