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
    /// - Returns: The event with its source context (the exchange's), stream id and version,
    ///   and as metadata only what the contract carries: `correlation_id`, `x-causation-id`
    ///   and a valid W3C `traceparent`.
    /// - Throws: ``PoisonMessage`` naming what is wrong.
    public static func incoming(
        _ delivery: Delivery, maximumBodySize: Int = EventMessage.defaultMaximumBodySize, registry: EventRegistry? = nil
    ) throws(PoisonMessage) -> IncomingEvent {
        try incoming(
            body: delivery.body, properties: delivery.properties, exchange: delivery.exchange, routingKey: delivery.routingKey,
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
    /// - Parameter directExchanges: Exchanges that put messages straight into the consumer's
    ///   queues, read like the default exchange (`app_id` names the source): a partitioned
    ///   context's ``ContextTopology/partitionExchange``, through which dead letters are replayed.
    /// - Throws: ``PoisonMessage`` naming what is wrong.
    public static func decode(
        _ delivery: Delivery, maximumBodySize: Int = EventMessage.defaultMaximumBodySize, registry: EventRegistry,
        directExchanges: Set<String> = []
    ) throws(PoisonMessage) -> (incoming: IncomingEvent, envelope: EventEnvelope) {
        let exchange = directExchanges.contains(delivery.exchange) ? "" : delivery.exchange
        let incoming = try incoming(
            body: delivery.body, properties: delivery.properties, exchange: exchange, routingKey: delivery.routingKey,
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
    /// - Parameters:
    ///   - exchange: The exchange it was published to: `<source>.events` names the source
    ///     context. The default exchange (`""`, a message put straight into a queue, as a
    ///     dead-letter replay does) leaves the source to `app_id`.
    ///   - routingKey: The routing key it was published with: `<source>.<type>` on a context's
    ///     exchange.
    public static func incoming(
        body: Data,
        properties: AMQPProperties,
        exchange: String,
        routingKey: String,
        maximumBodySize: Int = EventMessage.defaultMaximumBodySize,
        registry: EventRegistry? = nil
    ) throws(PoisonMessage) -> IncomingEvent {
        try incoming(
            body: body, properties: properties, exchange: exchange, routingKey: routingKey, maximumBodySize: maximumBodySize,
            registry: registry, checksJSON: true)
    }

    private static func incoming(
        body: Data, properties: AMQPProperties, exchange: String, routingKey: String, maximumBodySize: Int, registry: EventRegistry?,
        checksJSON: Bool
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
        let sourceContext = try source(exchange: exchange, routingKey: routingKey, typeName: typeName, appID: properties.appId)
        let headers = properties.headers ?? [:]
        guard let streamHeader = headers[Header.streamID] else {
            throw PoisonMessage(.missingHeaders, detail: "header \(Header.streamID) is missing")
        }
        guard let streamText = streamHeader.stringValue, let streamID = try? StreamID(streamText) else {
            throw PoisonMessage(.invalidHeaders, detail: "header \(Header.streamID) is \(describe(streamHeader)), not a valid stream id")
        }
        guard let versionHeader = headers[Header.streamVersion] else {
            throw PoisonMessage(.missingHeaders, detail: "header \(Header.streamVersion) is missing")
        }
        let streamVersion = try positiveInteger(versionHeader, Header.streamVersion)
        var schemaVersion = 1
        if let schemaHeader = headers[Header.schemaVersion] {
            schemaVersion = try positiveInteger(schemaHeader, Header.schemaVersion)
        }
        var causationID: UUID?
        if let causation = headers[Header.causationID] {
            guard let text = causation.stringValue, let parsed = UUID.parse(text) else {
                throw PoisonMessage(.invalidHeaders, detail: "header \(Header.causationID) is \(describe(causation)), not a UUID")
            }
            causationID = parsed
        }
        // Only the contract's headers become metadata; of the trace context, a valid W3C
        // traceparent and, with it, a tracestate. Anything else a publisher adds stays on the message.
        var traceContext: [String: String] = [:]
        var invalidTraceParent: String?
        if let traceParent = headers[Header.traceParent] {
            if let text = traceParent.stringValue, isW3CTraceParent(text) {
                traceContext[Header.traceParent] = text
                if let traceState = headers[Header.traceState]?.stringValue { traceContext[Header.traceState] = traceState }
            } else {
                invalidTraceParent = String(describe(traceParent).prefix(120))
            }
        }
        let metadata = EventMetadata(
            correlationID: properties.correlationId.flatMap(UUID.parse),
            causationID: causationID,
            traceContext: traceContext
        )
        let event = EncodedEvent(
            id: id,
            typeName: typeName,
            schemaVersion: schemaVersion,
            createdAt: properties.timestamp ?? Date(),
            metadata: metadata,
            payload: body
        )
        return IncomingEvent(
            sourceContext: sourceContext,
            streamID: streamID,
            streamVersion: Int64(streamVersion),
            event: event,
            previousDeliveries: headers[deliveryCountHeader]?.intValue ?? 0,
            invalidTraceParent: invalidTraceParent
        )
    }

    /// The source context: the exchange `<source>.events`, whose routing key must be
    /// `<source>.<type>`; `app_id` only for a message put straight into a queue.
    private static func source(exchange: String, routingKey: String, typeName: String, appID: String?) throws(PoisonMessage) -> String {
        let suffix = ".events"
        if exchange.isEmpty {
            guard let appID, !appID.isEmpty else {
                throw PoisonMessage(
                    .misrouted, detail: "the message came through the default exchange without an app_id naming its source context")
            }
            return appID
        }
        // Compared byte by byte, as the broker compares names.
        let sourceLength = exchange.utf8.count - suffix.utf8.count
        guard sourceLength > 0, exchange.utf8.dropFirst(sourceLength).elementsEqual(suffix.utf8) else {
            throw PoisonMessage(.misrouted, detail: "the exchange '\(exchange)' names no source context; expected '<context>\(suffix)'")
        }
        let source = exchange.utf8.prefix(sourceLength)
        let key = routingKey.utf8
        guard key.count == sourceLength + 1 + typeName.utf8.count, key.starts(with: source),
            key.dropFirst(sourceLength).first == UInt8(ascii: "."), key.dropFirst(sourceLength + 1).elementsEqual(typeName.utf8)
        else {
            let expected = Self.routingKey(context: String(decoding: source, as: UTF8.self), typeName: typeName)
            throw PoisonMessage(
                .misrouted,
                detail: "a \(typeName) on \(exchange) was published with routing key '\(routingKey)'; the contract's key is '\(expected)'")
        }
        return String(decoding: source, as: UTF8.self)
    }

    private static func positiveInteger(_ value: AMQPFieldValue, _ header: String) throws(PoisonMessage) -> Int {
        guard let number = value.intValue, number > 0 else {
            throw PoisonMessage(.invalidHeaders, detail: "header \(header) is \(describe(value)); expected a positive integer")
        }
        return number
    }

    /// A header value for a poison detail: its AMQP type and, if short, its value.
    private static func describe(_ value: AMQPFieldValue) -> String {
        switch value {
        case .string(let text): "the string '\(text.prefix(80))'"
        case .int32(let number): "the integer \(number)"
        case .int64(let number): "the integer \(number)"
        default: "\(value)".prefix(80).description
        }
    }

    /// Whether `text` is a W3C trace context `traceparent`: `version-traceid-parentid-flags`
    /// in lower-case hex, the ids not all zero, version `ff` invalid; a future version may
    /// append fields after a dash.
    static func isW3CTraceParent(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 55 else { return false }
        func isHex(_ range: Range<Int>) -> Bool {
            bytes[range].allSatisfy {
                (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
            }
        }
        func isZero(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { $0 == UInt8(ascii: "0") } }
        let dash = UInt8(ascii: "-")
        guard isHex(0..<2), bytes[2] == dash, isHex(3..<35), bytes[35] == dash, isHex(36..<52), bytes[52] == dash, isHex(53..<55) else {
            return false
        }
        let version = String(decoding: bytes[0..<2], as: UTF8.self)
        guard version != "ff", !isZero(3..<35), !isZero(36..<52) else { return false }
        if version == "00" { return bytes.count == 55 }
        return bytes.count == 55 || bytes[55] == dash
    }
}
