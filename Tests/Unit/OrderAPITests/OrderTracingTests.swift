import DemoContexts
import EventSourcery
import EventSourcerySQLite
import Foundation
import Hummingbird
import HummingbirdTesting
import OrderAPI
import TestSupport
import Testing
import Tracing

/// The tracer of this test process, bootstrapped once: the HTTP middleware takes the
/// bootstrapped tracer. Other tests of the process record spans too; these tests look only
/// at the traces they started.
private let tracer: RecordingTracer = {
    let tracer = RecordingTracer()
    InstrumentationSystem.bootstrap(tracer)
    return tracer
}()

@Suite("Order HTTP API tracing")
struct OrderTracingTests {
    /// Places an order with `headers` and returns the stored event.
    private func placeOrder(headers: HTTPFields) async throws -> StoredEvent {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "order-tracing-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage = try SQLiteEventStorage(path: directory.appendingPathComponent("order.sqlite").path)
        defer { try? storage.close() }
        let store = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes), tracer: tracer)
        let router = Router()
        OrderRoutes(store: store).register(on: router)
        let orderID = UUID().uuidString.lowercased()
        try await Application(router: router).test(.router) { client in
            var headers = headers
            headers[.contentType] = "application/json"
            let response = try await client.execute(
                uri: "/orders", method: .post, headers: headers, body: ByteBuffer(string: #"{"amount": 5, "orderId": "\#(orderID)"}"#))
            #expect(response.status == .created)
        }
        return try #require(try await store.load(StreamID(category: "order", id: orderID)).first)
    }

    @Test func theRequestSpanContinuesAnIncomingTraceParent() async throws {
        let traceID = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        var headers = HTTPFields()
        headers[.init("traceparent")!] = "00-\(traceID)-b7ad6b7169203331-01"
        let placed = try await placeOrder(headers: headers)
        try await waitUntil(timeout: .seconds(5)) { tracer.spans(inTrace: traceID).count == 2 }
        let spans = tracer.spans(inTrace: traceID)
        let request = try #require(spans.first { $0.kind == .server })
        #expect(request.name == "/orders")
        #expect(request.parentSpanID == "b7ad6b7169203331")
        #expect(request.attribute("http.response.status_code") == .int64(201))
        let append = try #require(spans.first { $0.name == "append" })
        #expect(append.parentSpanID == request.spanID)
        #expect(placed.envelope.metadata.traceContext == ["traceparent": "00-\(traceID)-\(append.spanID)-01"])
    }

    @Test func aRequestWithoutTraceParentStartsATrace() async throws {
        let placed = try await placeOrder(headers: [:])
        let traceParent = try #require(placed.envelope.metadata.traceContext["traceparent"])
        let identity = try #require(RecordingTracer.Identity(traceParent: traceParent))
        try await waitUntil(timeout: .seconds(5)) { tracer.spans(inTrace: identity.traceID).count == 2 }
        let request = try #require(tracer.spans(inTrace: identity.traceID).first { $0.kind == .server })
        #expect(request.parentSpanID == nil)
    }
}
