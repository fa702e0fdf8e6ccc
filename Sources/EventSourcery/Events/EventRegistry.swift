import Foundation

/// Maps stable type names to event types, and upgrades old schema versions on read.
///
/// Register every event type a store reads. Decoding a name that is not registered
/// throws ``EventStoreError/Code/unknownEventType`` rather than crashing.
///
/// ```swift
/// var registry = EventRegistry()
/// registry.register(OrderPlaced.self)
/// // OrderPlaced v1 had "total"; v2 calls it "amount".
/// registry.registerUpcaster(for: OrderPlaced.self, from: 1) { json in
///     var json = json
///     json["amount"] = json["total"]
///     return json
/// }
/// ```
public struct EventRegistry: Sendable {
    /// Turns the JSON of schema version N into the JSON of version N + 1.
    public typealias Upcaster = @Sendable (JSONValue) throws -> JSONValue

    private struct Entry: Sendable {
        var type: any Event.Type
        var upcasters: [Int: Upcaster] = [:]
    }

    private var entries: [String: Entry] = [:]

    /// Creates a registry holding `types`.
    public init(_ types: [any Event.Type] = []) {
        for type in types { register(type) }
    }

    /// Registers `type` under its ``Event/typeName``.
    public mutating func register(_ type: any Event.Type) {
        entries[type.typeName, default: Entry(type: type)].type = type
    }

    /// Registers the upcaster that turns version `version` of `type`'s JSON into version `version + 1`.
    public mutating func registerUpcaster(for type: any Event.Type, from version: Int, _ upcaster: @escaping Upcaster) {
        entries[type.typeName, default: Entry(type: type)].upcasters[version] = upcaster
    }

    /// The type registered under `typeName`, if any.
    public func type(named typeName: String) -> (any Event.Type)? {
        entries[typeName]?.type
    }

    /// All registered type names.
    public var typeNames: [String] { entries.keys.sorted() }

    /// Encodes an envelope for storage. Encoding needs no registration.
    public static func encode(_ envelope: EventEnvelope) throws(EventStoreError) -> EncodedEvent {
        let payload: Data
        do {
            payload = try payloadEncoder.encode(envelope.event)
        } catch {
            throw EventStoreError(
                .unencodableEvent,
                message: "Event '\(envelope.typeName)' could not be encoded as JSON. Check its Encodable conformance.",
                typeName: envelope.typeName,
                underlying: error
            )
        }
        return EncodedEvent(
            id: envelope.id,
            typeName: envelope.typeName,
            schemaVersion: envelope.schemaVersion,
            createdAt: envelope.createdAt,
            metadata: envelope.metadata,
            payload: payload
        )
    }

    /// Decodes a stored event, applying upcasters from its stored schema version to the
    /// registered type's current version.
    ///
    /// - Throws: ``EventStoreError`` with `unknownEventType`, `missingUpcaster` or `undecodablePayload`.
    public func decode(_ encoded: EncodedEvent) throws(EventStoreError) -> EventEnvelope {
        guard let entry = entries[encoded.typeName] else {
            throw EventStoreError(
                .unknownEventType,
                message: "No event type is registered under '\(encoded.typeName)' (event \(encoded.id)). "
                    + "Register it with EventRegistry.register(_:) before reading.",
                typeName: encoded.typeName
            )
        }
        let payload = try upcast(encoded, entry: entry)
        do {
            let event = try Self.payloadDecoder.decode(entry.type, from: payload)
            return EventEnvelope(event, id: encoded.id, createdAt: encoded.createdAt, metadata: encoded.metadata)
        } catch {
            throw EventStoreError(
                .undecodablePayload,
                message: "The payload of event \(encoded.id) does not decode as '\(encoded.typeName)' "
                    + "schema version \(entry.type.schemaVersion): \(error). "
                    + "If the schema changed, raise schemaVersion and register an upcaster.",
                typeName: encoded.typeName,
                underlying: error
            )
        }
    }

    /// Decodes a recorded event into a ``StoredEvent``.
    public func decode(_ recorded: RecordedEvent) throws(EventStoreError) -> StoredEvent {
        StoredEvent(
            streamID: recorded.streamID,
            streamVersion: recorded.streamVersion,
            position: recorded.position,
            envelope: try decode(recorded.event)
        )
    }

    private func upcast(_ encoded: EncodedEvent, entry: Entry) throws(EventStoreError) -> Data {
        let target = entry.type.schemaVersion
        guard encoded.schemaVersion != target else { return encoded.payload }
        guard encoded.schemaVersion < target else {
            throw EventStoreError(
                .missingUpcaster,
                message: "Event \(encoded.id) of type '\(encoded.typeName)' has schema version \(encoded.schemaVersion), "
                    + "newer than this program's version \(target). Deploy the newer code to read it.",
                typeName: encoded.typeName
            )
        }
        do {
            var json = try Self.decoder.decode(JSONValue.self, from: encoded.payload)
            for version in encoded.schemaVersion..<target {
                guard let upcaster = entry.upcasters[version] else {
                    throw EventStoreError(
                        .missingUpcaster,
                        message: "Event \(encoded.id) of type '\(encoded.typeName)' is stored at schema version "
                            + "\(encoded.schemaVersion) but no upcaster from version \(version) to \(version + 1) is registered.",
                        typeName: encoded.typeName
                    )
                }
                json = try upcaster(json)
            }
            return try Self.encoder.encode(json)
        } catch let error as EventStoreError {
            throw error
        } catch {
            throw EventStoreError(
                .undecodablePayload,
                message: "Upcasting event \(encoded.id) of type '\(encoded.typeName)' failed: \(error).",
                typeName: encoded.typeName,
                underlying: error
            )
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    /// Reads payloads as ``decoder`` does, faster.
    static let payloadDecoder = PayloadDecoder(fallback: decoder)

    /// Writes payloads as ``encoder`` does, faster.
    static let payloadEncoder = PayloadEncoder(fallback: encoder)
}
