/// An exchange declaration.
///
/// Declarations are idempotent: declaring an exchange that exists with the same settings
/// succeeds; different settings fail with ``AMQPError/Code/preconditionFailed``.
public struct AMQPExchange: Sendable, Hashable {
    /// An exchange type.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        /// The type name sent to the broker.
        public var name: String

        /// Creates a type from its broker name, e.g. `x-consistent-hash`.
        public init(_ name: String) { self.name = name }

        /// Routes by exact routing key.
        public static let direct = Kind("direct")
        /// Routes by routing-key pattern (`order.*`, `#`).
        public static let topic = Kind("topic")
        /// Routes to every bound queue.
        public static let fanout = Kind("fanout")
        /// Routes by header values.
        public static let headers = Kind("headers")

        /// The type name.
        public var description: String { name }
    }

    /// The exchange name.
    public var name: String
    /// The exchange type.
    public var kind: Kind
    /// Whether the exchange survives a broker restart. Default `true`.
    public var durable: Bool
    /// Whether the broker deletes it when the last binding is removed. Default `false`.
    public var autoDelete: Bool
    /// Whether only other exchanges may publish to it. Default `false`.
    public var `internal`: Bool
    /// Extra arguments, e.g. `alternate-exchange`.
    public var arguments: AMQPTable

    /// Creates an exchange declaration.
    public init(
        name: String, kind: Kind = .topic, durable: Bool = true, autoDelete: Bool = false, internal: Bool = false,
        arguments: AMQPTable = [:]
    ) {
        self.name = name
        self.kind = kind
        self.durable = durable
        self.autoDelete = autoDelete
        self.internal = `internal`
        self.arguments = arguments
    }
}
