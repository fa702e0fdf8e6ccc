import DemoContexts
import EventSourcery
import EventSourcerySQLite
import Foundation
import Hummingbird
import HummingbirdTesting
import OrderAPI
import Testing

@Suite("Order HTTP API")
struct OrderRoutesTests {
    /// Runs `body` against the routes over a fresh SQLite store in a temporary directory.
    private func withAPI(_ body: @Sendable (EventStore, any TestClientProtocol) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "order-api-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let storage = try SQLiteEventStorage(path: directory.appendingPathComponent("order.sqlite").path)
        let store = EventStore(storage: storage, registry: EventRegistry(DemoContext.eventTypes))
        let router = Router()
        OrderRoutes(store: store).register(on: router)
        try await Application(router: router).test(.router) { client in try await body(store, client) }
        try storage.close()
    }

    private func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any])
    }

    private func post(_ client: any TestClientProtocol, _ body: String) async throws -> TestResponse {
        try await client.execute(uri: "/orders", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: body))
    }

    @Test func placesAnOrder() async throws {
        try await withAPI { store, client in
            let response = try await post(client, #"{"amount": 250, "orderId": "o-1"}"#)
            #expect(response.status == .created)
            #expect(response.headers[.location] == "/orders/o-1")
            let body = try json(response)
            #expect(body["orderId"] as? String == "o-1")
            #expect(body["status"] as? String == "placed")
            #expect(body["amount"] as? Int == 250)
            let eventID = try #require(body["eventId"] as? String)
            #expect(body["correlationId"] as? String == eventID)
            let events = try await store.load("order-o-1")
            #expect(events.count == 1)
            #expect(events.first?.envelope.as(OrderPlaced.self) == OrderPlaced(orderID: "o-1", amount: 250))
            #expect(events.first?.envelope.id.uuidString.lowercased() == eventID)
        }
    }

    @Test func generatesALowercaseUUIDOrderID() async throws {
        try await withAPI { store, client in
            let response = try await post(client, #"{"amount": 5}"#)
            #expect(response.status == .created)
            let orderID = try #require(try json(response)["orderId"] as? String)
            #expect(UUID(uuidString: orderID) != nil)
            #expect(orderID == orderID.lowercased())
            #expect(try await store.streamVersion(StreamID(category: "order", id: orderID)) == 1)
        }
    }

    @Test(arguments: [
        (#"{"orderId": "o-1"}"#, "amount"),
        (#"{"amount": -5}"#, "amount"),
        (#"{"amount": 0}"#, "amount"),
        (#"{"amount": "100"}"#, "amount"),
        (#"{"amount": 12.5}"#, "amount"),
        (#"{"amount": 100"#, "JSON object"),
        (#"[1, 2]"#, "JSON object"),
        (#"{"amount": 100, "orderId": "a/b"}"#, "orderId"),
        (#"{"amount": 100, "orderId": ""}"#, "orderId"),
        (#"{"amount": 100, "orderId": 7}"#, "orderId"),
    ])
    func rejectsABadRequest(body: String, field: String) async throws {
        try await withAPI { store, client in
            let response = try await post(client, body)
            #expect(response.status == .badRequest)
            let message = try #require(try json(response)["error"] as? String)
            #expect(message.contains(field), "\(message)")
            #expect(try await store.readAll().isEmpty)
        }
    }

    @Test func rejectsAnOrderIDTooLongForAStream() async throws {
        try await withAPI { _, client in
            let response = try await post(client, #"{"amount": 1, "orderId": "\#(String(repeating: "x", count: 250))"}"#)
            #expect(response.status == .badRequest)
            #expect((try json(response)["error"] as? String)?.contains("orderId") == true)
        }
    }

    @Test func rejectsADuplicateOrderID() async throws {
        try await withAPI { store, client in
            #expect(try await post(client, #"{"amount": 1, "orderId": "dup"}"#).status == .created)
            let response = try await post(client, #"{"amount": 2, "orderId": "dup"}"#)
            #expect(response.status == .conflict)
            #expect((try json(response)["error"] as? String)?.contains("dup") == true)
            #expect(try await store.streamVersion("order-dup") == 1)
        }
    }

    @Test func answersNotFoundAndBadRequestForGet() async throws {
        try await withAPI { _, client in
            let missing = try await client.execute(uri: "/orders/nope", method: .get)
            #expect(missing.status == .notFound)
            #expect((try json(missing)["error"] as? String)?.contains("nope") == true)
            let invalid = try await client.execute(uri: "/orders/a.b", method: .get)
            #expect(invalid.status == .badRequest)
            #expect((try json(invalid)["error"] as? String)?.contains("order id") == true)
        }
    }

    @Test func showsAPlacedOrder() async throws {
        try await withAPI { _, client in
            let placed = try json(try await post(client, #"{"amount": 42, "orderId": "o-2"}"#))
            let response = try await client.execute(uri: "/orders/o-2", method: .get)
            #expect(response.status == .ok)
            let body = try json(response)
            #expect(body["orderId"] as? String == "o-2")
            #expect(body["status"] as? String == "placed")
            #expect(body["amount"] as? Int == 42)
            #expect(body["correlationId"] as? String == placed["correlationId"] as? String)
            let timeline = try #require(body["timeline"] as? [[String: Any]])
            #expect(timeline.count == 1)
            #expect(timeline.first?["event"] as? String == "OrderPlaced")
            #expect(timeline.first?["eventId"] as? String == placed["eventId"] as? String)
            #expect(timeline.first?["streamVersion"] as? Int == 1)
            #expect(timeline.first?["causationId"] == nil)
            let at = try #require(timeline.first?["at"] as? String)
            #expect((try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(at)) != nil, "\(at)")
            let detail = try #require(timeline.first?["detail"] as? [String: Any])
            #expect(detail["amount"] as? Int == 42)
            #expect(detail["orderID"] as? String == "o-2")
        }
    }

    @Test func showsACompletedOrderWithItsTimeline() async throws {
        try await withAPI { store, client in
            #expect(try await post(client, #"{"amount": 42, "orderId": "o-3"}"#).status == .created)
            // As the order consumer would: OrderPaid then OrderCompleted, caused by the placement.
            let placed = try #require(try await store.load("order-o-3").first?.envelope)
            try await store.append(
                [
                    EventEnvelope(OrderPaid(orderID: "o-3", paymentID: "pay-o-3"), metadata: .causedBy(placed)),
                    EventEnvelope(OrderCompleted(orderID: "o-3", invoiceNumber: 1), metadata: .causedBy(placed)),
                ],
                to: "order-o-3", expectedVersion: .exact(1)
            )
            let body = try json(try await client.execute(uri: "/orders/o-3", method: .get))
            #expect(body["status"] as? String == "completed")
            let timeline = try #require(body["timeline"] as? [[String: Any]])
            #expect(timeline.map { $0["event"] as? String } == ["OrderPlaced", "OrderPaid", "OrderCompleted"])
            #expect(timeline.map { $0["streamVersion"] as? Int } == [1, 2, 3])
            #expect(timeline[1]["causationId"] as? String == placed.id.uuidString.lowercased())
            #expect((timeline[2]["detail"] as? [String: Any])?["invoiceNumber"] as? Int == 1)
        }
    }

    @Test func answersHealth() async throws {
        try await withAPI { _, client in
            let response = try await client.execute(uri: "/health", method: .get)
            #expect(response.status == .ok)
            #expect(try json(response)["status"] as? String == "ok")
        }
    }

    @Test func healthAnswers503WhenTheStoreCannotBeRead() async throws {
        try await withAPI { store, client in
            try #require(store.storage as? SQLiteEventStorage).close()
            let response = try await client.execute(uri: "/health", method: .get)
            #expect(response.status == .serviceUnavailable)
            #expect(try json(response)["error"] as? String == "The order store cannot be read; see the server log.")
        }
    }

    @Test func headAnswersTheGetHeadersWithoutABody() async throws {
        try await withAPI { _, client in
            let get = try await client.execute(uri: "/health", method: .get)
            let head = try await client.execute(uri: "/health", method: .head)
            #expect(head.status == .ok)
            #expect(head.body.readableBytes == 0)
            #expect(head.headers[.contentType] == get.headers[.contentType])
            #expect(head.headers[.contentLength] == "\(get.body.readableBytes)")
            let missing = try await client.execute(uri: "/orders/nope", method: .head)
            #expect(missing.status == .notFound)
            #expect(missing.body.readableBytes == 0)
        }
    }

    @Test func anUnknownPathAnswers404WithTheErrorBody() async throws {
        try await withAPI { _, client in
            let response = try await client.execute(uri: "/invoices/1", method: .get)
            #expect(response.status == .notFound)
            #expect(response.headers[.contentType] == "application/json; charset=utf-8")
            let message = try #require(try json(response)["error"] as? String)
            #expect(message.hasPrefix("No route GET /invoices/1; the API serves GET /health, HEAD /health, POST /orders"))
        }
    }

    @Test(arguments: [
        ("/orders", HTTPRequest.Method.get, "POST"),
        ("/orders/o-1", .delete, "GET, HEAD"),
        ("/orders/o-1", .post, "GET, HEAD"),
        ("/health", .put, "GET, HEAD"),
    ])
    func aMethodThePathDoesNotServeAnswers405WithAllow(path: String, method: HTTPRequest.Method, allow: String) async throws {
        try await withAPI { _, client in
            let response = try await client.execute(uri: path, method: method)
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers[.allow] == allow)
            #expect(try json(response)["error"] as? String == "\(path) does not serve \(method.rawValue); it serves \(allow).")
        }
    }

    @Test func aBodyAboveTheUploadLimitAnswers413WithTheErrorBody() async throws {
        try await withAPI { store, client in
            let body = #"{"amount": 1, "orderId": ""# + String(repeating: "x", count: 3 << 20) + #""}"#
            let response = try await post(client, body)
            #expect(response.status == .contentTooLarge)
            #expect(try json(response)["error"] as? String == "The request body is larger than \(2 << 20) bytes.")
            #expect(try await store.readAll().isEmpty)
        }
    }
}
