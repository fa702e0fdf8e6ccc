/// The context modules built into a service executable, keyed by context name.
///
/// A service built with the kit (``ContextService``) looks the module of its `--context` up
/// here; a generic build (`outbox-publisher`, `context-consumer`) has none.
///
/// ```swift
/// var handlers = ContextHandlers()
/// handlers.register(ContextModule(name: "shipping", eventTypes: [...]) { store in [...] })
/// ```
public struct ContextHandlers: Sendable, ExpressibleByArrayLiteral {
    private var modules: [String: ContextModule] = [:]

    /// Creates a registry holding `modules`.
    public init(_ modules: [ContextModule] = []) {
        for module in modules { register(module) }
    }

    /// Creates a registry holding the modules of the literal.
    public init(arrayLiteral modules: ContextModule...) {
        self.init(modules)
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
