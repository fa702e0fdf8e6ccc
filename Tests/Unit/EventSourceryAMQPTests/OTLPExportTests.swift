#if OTLP
    import EventSourcery
    import EventSourceryServices
    import EventSourceryTesting
    import Foundation
    import Hummingbird
    import NIOConcurrencyHelpers
    import ServiceLifecycle
    import TestSupport
    import Testing
    import Tracing

    /// The kit's OTLP exporter, compiled only with the package trait `OTLP`: the library's spans
    /// reach a collector, here a tiny OTLP/HTTP receiver on loopback in the test process.
    struct OTLPExportTests {
        /// One request the receiver got.
        struct Received: Sendable {
            var path: String
            var contentType: String?
            var body: [UInt8]
        }

        @Test(.timeLimit(.minutes(1))) func anAppendSpanReachesAnOTLPHTTPReceiver() async throws {
            let requests = NIOLockedValueBox<[Received]>([])
            let port = NIOLockedValueBox<Int?>(nil)
            let router = Router()
            router.post("/v1/traces") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                let received = Received(
                    path: request.uri.path, contentType: request.headers[.contentType], body: Array(body.readableBytesView))
                requests.withLockedValue { $0.append(received) }
                // An empty ExportTraceServiceResponse: full success.
                return Response(status: .ok, headers: [.contentType: "application/x-protobuf"])
            }
            let app = Application(
                router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in port.withLockedValue { $0 = channel.localAddress?.port } })
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await app.run() }
                try await waitUntil(timeout: .seconds(10)) { port.withLockedValue { $0 } != nil }
                var configuration = ServiceConfiguration()
                configuration.tracing.otlpEndpoint = "http://127.0.0.1:\(port.withLockedValue { $0 } ?? 0)"
                let endpoint = try #require(try configuration.otlpTracesEndpoint())
                #expect(endpoint.hasSuffix("/v1/traces"))
                let (tracer, exporter) = try ServiceBootstrap.makeOTLPTracer(endpoint: endpoint, serviceName: "otlp-unit")
                group.addTask { try await exporter.run() }

                let store = EventStore(storage: InMemoryEventStorage(), registry: EventRegistry([ItemCounted.self]), tracer: tracer)
                try await store.append([EventEnvelope(ItemCounted(index: 1))], to: "item-1")
                let traceParent = try #require(try await store.load("item-1").first?.envelope.metadata.traceContext["traceparent"])
                // The batch processor exports within its schedule delay (5 s by default).
                try await waitUntil(timeout: .seconds(20)) { !requests.withLockedValue { $0 }.isEmpty }

                let received = requests.withLockedValue { $0 }
                #expect(received.map(\.path) == ["/v1/traces"])
                #expect(received[0].contentType == "application/x-protobuf")
                // The protobuf body carries the strings as they are: the service, the span and its attribute.
                let body = String(decoding: received[0].body, as: UTF8.self)
                #expect(body.contains("otlp-unit"))
                #expect(body.contains("append"))
                #expect(body.contains("item-1"))
                // The stored trace context is the W3C form of the exported span.
                #expect(traceParent.hasPrefix("00-") && traceParent.count == 55)
                group.cancelAll()
            }
        }
    }
#endif
