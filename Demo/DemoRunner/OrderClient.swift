import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Talks to the order context's HTTP API (`order-api`) over AsyncHTTPClient's shared client,
/// which keeps its connections open between requests: the load generator's own cost stays a
/// small part of the CPU the demo measures per order.
struct OrderClient: Sendable {
    /// The API's base URL, such as `http://127.0.0.1:8080`.
    var baseURL: String

    /// The longest a request may take.
    static let timeout = TimeAmount.seconds(30)

    /// Whether `GET /health` answers 200.
    func isHealthy() async -> Bool {
        let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: baseURL + "/health"), timeout: Self.timeout)
        return response?.status == .ok
    }

    /// Places an order with `POST /orders`.
    ///
    /// - Throws: ``DemoError`` with the API's answer when it is not `201 Created`.
    func placeOrder(id: String, amount: Int) async throws {
        var request = HTTPClientRequest(url: baseURL + "/orders")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        // The plan's order ids are digits (`OrderPlan`): nothing in them to escape.
        request.body = .bytes(ByteBuffer(string: #"{"orderId":"\#(id)","amount":\#(amount)}"#))
        let response = try await HTTPClient.shared.execute(request, timeout: Self.timeout)
        let body = try await response.body.collect(upTo: 64 * 1024)
        guard response.status == .created else {
            throw DemoError("POST /orders for \(id) answered \(response.status.code): \(String(buffer: body))")
        }
    }

    /// The body of `GET <url>`, or `nil` when the request fails or does not answer 200.
    static func get(_ url: String) async -> String? {
        guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: timeout),
            response.status == .ok, let body = try? await response.body.collect(upTo: 16 * 1024 * 1024)
        else { return nil }
        return String(buffer: body)
    }
}
