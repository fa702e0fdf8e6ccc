/// The context modules built into an executable, keyed by context name.
///
/// `context-consumer --context payment` looks its handlers up here.
/// ``DemoContext/handlers(declineAbove:publishOrderOutcomes:gatewayDownFile:)`` returns the demo contexts `order`, `payment`, `invoice`.
///
/// ```swift
/// var handlers = ContextHandlers()
/// handlers.register(ContextModule(name: "shipping", eventTypes: [...], handlers: [...]))
/// ```
public struct ContextHandlers: Sendable {
    private var modules: [String: ContextModule] = [:]

    /// Creates a registry holding `modules`.
    public init(_ modules: [ContextModule] = []) {
        for module in modules { register(module) }
    }

    /// Adds or replaces the module of `module.name`.
    public mutating func register(_ module: ContextModule) {
        modules[module.name] = module
    }

    /// The module of `context`, if one is registered.
    public func module(for context: String) -> ContextModule? {
        modules[context]
    }

    /// The registered context names, sorted.
    public var contextNames: [String] { modules.keys.sorted() }
}
