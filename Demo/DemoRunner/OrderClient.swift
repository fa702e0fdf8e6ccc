import Foundation
#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Talks to the order context's HTTP API (`order-api`).
struct OrderClient: Sendable {
    /// The API's base URL, such as `http://127.0.0.1:8080`.
    var baseURL: URL

    /// Whether `GET /health` answers 200.
    func isHealthy() async -> Bool {
        guard let (_, response) = try? await URLSession.shared.data(from: baseURL.appendingPathComponent("health")) else { return false }
        return (response as? HTTPURLResponse)?.statusCode == 200
    }

    /// Places an order with `POST /orders`.
    ///
    /// - Throws: ``DemoError`` with the API's answer when it is not `201 Created`.
    func placeOrder(id: String, amount: Int) async throws {
        var request = URLRequest(url: baseURL.appendingPathComponent("orders"))
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: ["orderId": id, "amount": amount])
        let (body, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard status == 201 else {
            throw DemoError("POST /orders for \(id) answered \(status): \(String(decoding: body, as: UTF8.self))")
        }
    }
}
