import ArgumentParser
import EventSourcery
import EventSourceryAMQP
import EventSourceryServices
import EventSourceryTesting
import Testing

/// The service kit's registry and command line, without servers.
struct ServiceKitTests {
    struct Parcel: Event { var id: String }

    private func module(_ name: String, handlers: [String] = []) -> ContextModule {
        ContextModule(name: name, eventTypes: [Parcel.self]) { _ in
            handlers.map { EventHandler(name: $0, subscriptions: [EventSubscription(source: "order", type: "OrderCompleted")]) { _, _ in } }
        }
    }

    @Test func theRegistryFindsModulesByContextName() {
        let store = EventStore(storage: InMemoryEventStorage(), registry: EventRegistry())
        var handlers: ContextHandlers = [module("shipping", handlers: ["ship-order"]), module("billing")]
        #expect(handlers.contextNames == ["billing", "shipping"])
        #expect(handlers.module(for: "shipping")?.makeHandlers(store).map(\.name) == ["ship-order"])
        #expect(handlers.module(for: "order") == nil)
        handlers.register(module("shipping"))
        #expect(handlers.module(for: "shipping")?.makeHandlers(store).isEmpty == true, "replaced")
        #expect(ContextHandlers().contextNames.isEmpty)
    }

    @Test func aModuleRegistryReadsItsEventsAndTheConsumersRecords() {
        let registry = module("shipping").registry
        #expect(registry.type(named: "Parcel") != nil)
        #expect(registry.type(named: HandlerFailed.typeName) != nil)
        #expect(registry.type(named: EventSkipped.typeName) != nil)
    }

    @Test func rolesSayWhatRuns() {
        #expect(ServiceRole.relay.runsRelay && !ServiceRole.relay.runsConsumer)
        #expect(!ServiceRole.consumer.runsRelay && ServiceRole.consumer.runsConsumer)
        #expect(ServiceRole.all.runsRelay && ServiceRole.all.runsConsumer)
    }

    @Test func theCommandLineChecksItsModes() throws {
        let parsed = try ContextServiceOptions.parse(["--context", "shipping", "--role", "relay", "--once"])
        #expect(parsed.service.context == "shipping")
        #expect(parsed.role == .relay)
        #expect(parsed.once)
        #expect(throws: (any Error).self, "--once relays only") {
            try ContextServiceOptions.parse(["--context", "shipping", "--role", "consumer", "--once"])
        }
        #expect(throws: (any Error).self, "one admin mode at a time") {
            try ContextServiceOptions.parse(["--context", "shipping", "--list-dead", "--list-parked"])
        }
        #expect(throws: (any Error).self, "a skip needs a reason") {
            try ContextServiceOptions.parse(["--context", "shipping", "--skip-parked", "order/order-1"])
        }
        #expect(throws: (any Error).self, "a sequence is <source>/<stream>") {
            try ContextServiceOptions.parse(["--context", "shipping", "--retry-parked", "order-1"])
        }
        #expect(throws: (any Error).self, "a role is relay, consumer or all") {
            try ContextServiceOptions.parse(["--context", "shipping", "--role", "both"])
        }
        #expect(
            try ContextServiceOptions.parse(["--context", "shipping", "--skip-parked", "order/order-1", "--reason", "gone"]).reason
                == "gone")
    }
}
