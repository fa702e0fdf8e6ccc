/// A request to one bounded context to do something, stated in the imperative.
///
/// Commands are plain `Codable` value types, like events. A writer sends one through its
/// own store's outbox, in the same transaction as its events
/// (``WriteBatch/send(_:to:id:metadata:at:)``); the relay delivers it to the target
/// context's command queue, where a command handler decides, exactly once per command id,
/// whether the target's aggregate accepts it:
///
/// ```swift
/// struct ChargePayment: Command {
///     var orderID: String
///     var amount: Int
/// }
///
/// var batch = WriteBatch()
/// try batch.publish([EventEnvelope(OrderPlaced(orderID: "42", amount: 10))], to: "order-42")
/// try batch.send(ChargePayment(orderID: "42", amount: 10), to: "payment")
/// try await store.commit(batch)
/// ```
///
/// The ``typeName`` is the stable name written to the store and to the wire. It defaults
/// to the Swift type's name; override it before renaming a type.
public protocol Command: Codable, Sendable {
    /// The stable name of this command type in the store and on the wire.
    static var typeName: String { get }

    /// The version of this command's JSON schema, starting at 1.
    static var schemaVersion: Int { get }
}

extension Command {
    public static var typeName: String { String(describing: Self.self) }
    public static var schemaVersion: Int { 1 }
}
