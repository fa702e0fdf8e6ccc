import DemoContexts
import EventSourcery
import EventSourceryAMQP
import EventSourcerySQLite
import FlowTrace
import Foundation
import Testing

/// Three SQLite context stores in a temporary directory, filled with demo flows whose
/// events carry the causation and correlation ids the demo handlers write.
struct DemoStores {
    let directory: URL
    let order: EventStore
    let payment: EventStore
    let invoice: EventStore

    init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "flow-trace-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.directory = directory
        order = try Self.store("order", in: directory)
        payment = try Self.store("payment", in: directory)
        invoice = try Self.store("invoice", in: directory)
    }

    private static func store(_ name: String, in directory: URL) throws -> EventStore {
        EventStore(
            storage: try SQLiteEventStorage(path: directory.appendingPathComponent("\(name).sqlite").path),
            registry: EventRegistry(DemoContext.eventTypes))
    }

    /// Removes the stores, unless `FLOW_TRACE_KEEP_FIXTURES` is set (to try the CLI on them).
    func remove() {
        guard ProcessInfo.processInfo.environment["FLOW_TRACE_KEEP_FIXTURES"] == nil else {
            print("flow-trace fixture stores kept in \(directory.path)")
            return
        }
        try? FileManager.default.removeItem(at: directory)
    }

    var named: [(context: String, storage: any EventStorage)] {
        [("order", order.storage), ("payment", payment.storage), ("invoice", invoice.storage)]
    }

    /// Runs one order's flow the way the handlers do; `skew` shifts the payment clock.
    @discardableResult
    func runFlow(_ id: String, amount: Int, start: Date = Date(), paymentClockSkew: TimeInterval = 0) async throws -> EventEnvelope {
        let placed = EventEnvelope(OrderPlaced(orderID: id, amount: amount), createdAt: start)
        try await order.publish([placed], to: StreamID(category: "order", id: id))
        func caused(_ event: any Event, by cause: EventEnvelope, after ms: Double) -> EventEnvelope {
            EventEnvelope(event, createdAt: cause.createdAt.addingTimeInterval(ms / 1000), metadata: .causedBy(cause))
        }
        if amount > 1000 {
            let failed = caused(
                PaymentFailed(orderID: id, amount: amount, reason: "declined <script>alert(1)</script>"), by: placed,
                after: 5 + paymentClockSkew * 1000)
            try await payment.publish([failed], to: StreamID(category: "payment", id: id))
            try await order.append(
                [caused(OrderCancelled(orderID: id, reason: "declined"), by: failed, after: 4)], to: StreamID(category: "order", id: id))
            return placed
        }
        let paid = caused(
            PaymentSucceeded(orderID: id, paymentID: "pay-\(id)", amount: amount), by: placed, after: 5 + paymentClockSkew * 1000)
        try await payment.publish([paid], to: StreamID(category: "payment", id: id))
        let number = Int(try await invoice.streamVersion(DemoContext.invoiceCounterStream)) + 1
        let assigned = caused(InvoiceNumberAssigned(invoiceNumber: number, paymentID: "pay-\(id)"), by: paid, after: 3)
        let issued = caused(InvoiceIssued(orderID: id, paymentID: "pay-\(id)", invoiceNumber: number, amount: amount), by: paid, after: 3)
        var batch = WriteBatch()
        try batch.append([assigned], to: DemoContext.invoiceCounterStream)
        try batch.publish([issued], to: StreamID(category: "invoice", id: "pay-\(id)"))
        try await invoice.commit(batch)
        try await order.append(
            [caused(OrderPaid(orderID: id, paymentID: "pay-\(id)"), by: paid, after: 4)], to: StreamID(category: "order", id: id))
        try await order.append(
            [caused(OrderCompleted(orderID: id, invoiceNumber: number), by: issued, after: 6)], to: StreamID(category: "order", id: id))
        return placed
    }
}

@Suite("Flow trace")
struct FlowTraceTests {
    @Test("the trace of a known order lists its events in causal order across all three contexts")
    func knownOrder() async throws {
        let stores = try DemoStores()
        defer { stores.remove() }
        try await stores.runFlow("1", amount: 10)
        let placed = try await stores.runFlow("42", amount: 50)
        try await stores.runFlow("7", amount: 5000)

        let trace = try await FlowTrace.trace(orderID: "42", in: stores.named)
        #expect(trace.correlationID == placed.id)
        #expect(
            trace.steps.map(\.eventType) == [
                "OrderPlaced", "PaymentSucceeded", "InvoiceNumberAssigned", "InvoiceIssued", "OrderPaid", "OrderCompleted",
            ])
        #expect(trace.steps.map(\.context) == ["order", "payment", "invoice", "invoice", "order", "order"])
        #expect(trace.contexts == ["order", "payment", "invoice"])
        #expect(trace.steps[0].isRoot)
        #expect(trace.steps[1].causeIndex == 0 && trace.steps[1].isCrossContext)
        #expect(trace.steps[5].causeIndex == 3)
        #expect(abs((trace.steps[1].sinceCause ?? 0) - 0.005) < 0.0005)
        assertCausal(trace)
        // Other orders' events are not included.
        #expect(!trace.steps.contains { $0.payload.contains("\"orderID\":\"1\"") || $0.payload.contains("\"orderID\":\"7\"") })
        // Only the flow's events are read (through the correlation index), not the whole stores.
        #expect(trace.scannedEventCount == 6)

        let byCorrelation = try await FlowTrace.trace(correlationID: placed.id, in: stores.named)
        #expect(byCorrelation.steps.map(\.eventID) == trace.steps.map(\.eventID))
    }

    @Test("a declined order gives OrderPlaced, PaymentFailed, OrderCancelled")
    func declinedOrder() async throws {
        let stores = try DemoStores()
        defer { stores.remove() }
        try await stores.runFlow("7", amount: 5000)
        let trace = try await FlowTrace.trace(orderID: "7", in: stores.named)
        #expect(trace.steps.map(\.eventType) == ["OrderPlaced", "PaymentFailed", "OrderCancelled"])
        #expect(trace.steps.map(\.context) == ["order", "payment", "order"])
    }

    @Test("causal order holds when a child claims to be older than its parent")
    func clockSkew() async throws {
        let stores = try DemoStores()
        defer { stores.remove() }
        // The payment machine's clock is 2 s behind: PaymentSucceeded "happens" before OrderPlaced.
        try await stores.runFlow("9", amount: 10, paymentClockSkew: -2)
        let trace = try await FlowTrace.trace(orderID: "9", in: stores.named)
        #expect(
            trace.steps.map(\.eventType) == [
                "OrderPlaced", "PaymentSucceeded", "InvoiceNumberAssigned", "InvoiceIssued", "OrderPaid", "OrderCompleted",
            ])
        #expect(trace.steps[1].hasClockSkew)
        #expect(trace.steps[1].createdAt < trace.steps[0].createdAt)
        assertCausal(trace)
        #expect(trace.renderText().contains("clock skew!"))
    }

    @Test("an unknown order or correlation id is a typed error")
    func unknown() async throws {
        let stores = try DemoStores()
        defer { stores.remove() }
        try await stores.runFlow("1", amount: 10)
        let error = await #expect(throws: FlowTraceError.self) { try await FlowTrace.trace(orderID: "nope", in: stores.named) }
        #expect(error?.code == .unknownEntity)
        let other = await #expect(throws: FlowTraceError.self) { try await FlowTrace.trace(correlationID: UUID(), in: stores.named) }
        #expect(other?.code == .unknownCorrelation)
    }

    @Test("handler failures appear as failed attempts after the event they failed on")
    func failures() async throws {
        let stores = try DemoStores()
        defer { stores.remove() }
        let placed = try await stores.runFlow("5", amount: 10)
        let failure = EventEnvelope(
            HandlerFailed(
                eventID: placed.id, eventType: "OrderPlaced", sourceContext: "order", handler: "charge-order", error: "gateway timeout",
                attempt: 1, failedAt: placed.createdAt),
            createdAt: placed.createdAt.addingTimeInterval(0.001), metadata: .causedBy(placed)
        )
        try await stores.payment.append([failure], to: StreamID("failures-payment"))
        let trace = try await FlowTrace.trace(orderID: "5", in: stores.named)
        let step = try #require(trace.steps.first { $0.isFailure })
        #expect(step.index == 1 && step.causeIndex == 0 && step.context == "payment")
        #expect(step.summary.contains("handler charge-order failed on OrderPlaced (attempt 1): gateway timeout"))
        #expect(trace.steps.count == 7)
    }

    @Test("the renderings: text in order, HTML with an escaped SVG diagram, JSON round trip")
    func renderings() async throws {
        let stores = try DemoStores()
        defer { stores.remove() }
        try await stores.runFlow("42", amount: 50)
        try await stores.runFlow("7", amount: 5000)
        let trace = try await FlowTrace.trace(orderID: "42", in: stores.named)

        let text = trace.renderText()
        var cursor = text.startIndex
        for step in trace.steps {
            let range = try #require(text.range(of: step.streamLabel, range: cursor..<text.endIndex))
            cursor = range.upperBound
        }

        let html = trace.renderHTML()
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(html.components(separatedBy: "<g class=\"lifeline\"").count - 1 == 3)
        for context in ["order", "payment", "invoice"] { #expect(html.contains("<g class=\"lifeline\" data-context=\"\(context)\"")) }
        for step in trace.steps { #expect(html.contains(">\(step.eventType)<")) }
        #expect(html.contains(trace.correlationID.uuidString.lowercased()))
        #expect(!html.contains("src=") && !html.contains("<script") && !html.contains("href=\"http"))

        let declined = try await FlowTrace.trace(orderID: "7", in: stores.named)
        let declinedHTML = declined.renderHTML()
        #expect(!declinedHTML.contains("<script>"))
        #expect(declinedHTML.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        let svg = declined.renderSVG()
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        #expect(!svg.contains("<script>"))

        let json = try trace.renderJSON()
        let decoded = try FlowTrace.fromJSON(json)
        #expect(decoded.steps.map(\.eventID) == trace.steps.map(\.eventID))
        #expect(decoded.steps.map(\.causeIndex) == trace.steps.map(\.causeIndex))
    }

    @Test("ordering ties break by context order, then position")
    func ties() {
        let time = Date(timeIntervalSince1970: 1_000)
        func event(_ type: String, _ stream: StreamID, position: Int64, cause: UUID? = nil) -> RecordedEvent {
            RecordedEvent(
                streamID: stream, streamVersion: 1, position: position,
                event: EncodedEvent(
                    id: UUID(), typeName: type, schemaVersion: 1, createdAt: time, metadata: EventMetadata(causationID: cause),
                    payload: Data("{}".utf8)))
        }
        let root = event("A", "a-1", position: 9)
        let b = event("B", "b-1", position: 2, cause: root.event.id)
        let c = event("C", "c-1", position: 1, cause: root.event.id)
        let trace = FlowTrace(
            correlationID: UUID(),
            events: [
                .init(context: "c", recorded: c), .init(context: "b", recorded: b), .init(context: "a", recorded: root),
            ], contextOrder: ["a", "b", "c"])
        #expect(trace.steps.map(\.eventType) == ["A", "B", "C"])
        #expect(trace.contexts == ["a", "b", "c"])
    }

    private func assertCausal(_ trace: FlowTrace, sourceLocation: SourceLocation = #_sourceLocation) {
        for step in trace.steps {
            if let cause = step.causeIndex { #expect(cause < step.index, sourceLocation: sourceLocation) }
        }
    }
}
