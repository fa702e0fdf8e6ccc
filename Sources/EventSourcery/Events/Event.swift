import NIOConcurrencyHelpers

/// A fact that happened, stated in the past tense.
///
/// Events are plain `Codable` value types. Conform a struct and the store takes care
/// of its identity, timestamp, schema version and tracing metadata through
/// ``EventEnvelope``:
///
/// ```swift
/// struct OrderPlaced: Event {
///     var orderID: String
///     var amount: Int
/// }
/// ```
///
/// The ``typeName`` is the stable name written to the store and to the wire. It
/// defaults to the Swift type's name; override it before renaming a type so stored
/// events keep decoding.
public protocol Event: Codable, Sendable {
    /// The stable name of this event type in the store and on the wire.
    static var typeName: String { get }

    /// The version of this event's JSON schema, starting at 1.
    ///
    /// Raise it when the JSON shape changes and register an upcaster from the previous
    /// version with ``EventRegistry/registerUpcaster(for:from:_:)``.
    static var schemaVersion: Int { get }
}

extension Event {
    public static var typeName: String { DefaultTypeNames.name(of: Self.self) }
    public static var schemaVersion: Int { 1 }
}

/// The default type names, the types' Swift names, worked out once per type:
/// `String(describing:)` reads type metadata on every call, and every append and
/// publish asks for the name.
private enum DefaultTypeNames {
    private static let names = NIOLockedValueBox<[ObjectIdentifier: String]>([:])

    static func name(of type: any Event.Type) -> String {
        let key = ObjectIdentifier(type)
        if let name = names.withLockedValue({ $0[key] }) { return name }
        let name = String(describing: type)
        names.withLockedValue { $0[key] = name }
        return name
    }
}
