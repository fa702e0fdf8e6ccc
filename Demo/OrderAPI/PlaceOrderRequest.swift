/// The body of `POST /orders`: `{"amount": <positive integer>, "orderId": "<optional id>"}`.
///
/// Decoding checks every field and throws ``OrderAPIError`` `400` naming the field at fault.
struct PlaceOrderRequest: Decodable {
    /// The order's amount, greater than zero.
    var amount: Int
    /// The order id the client chose, or `nil` to have one generated.
    var orderID: String?

    private enum CodingKeys: String, CodingKey {
        case amount
        case orderID = "orderId"
    }

    init(from decoder: any Decoder) throws {
        let container: KeyedDecodingContainer<CodingKeys>
        do {
            container = try decoder.container(keyedBy: CodingKeys.self)
        } catch {
            throw OrderAPIError.badRequest(Self.notAnObject)
        }
        guard container.contains(.amount) else {
            throw OrderAPIError.badRequest("The field 'amount' is missing; it must be a positive integer.")
        }
        do {
            amount = try container.decode(Int.self, forKey: .amount)
        } catch {
            throw OrderAPIError.badRequest("The field 'amount' must be a positive integer.")
        }
        guard amount > 0 else {
            throw OrderAPIError.badRequest("The field 'amount' must be a positive integer; got \(amount).")
        }
        do {
            orderID = try container.decodeIfPresent(String.self, forKey: .orderID)
        } catch {
            throw OrderAPIError.badRequest("The field 'orderId' must be a string.")
        }
    }

    /// The message for a body that is not a JSON object.
    static let notAnObject = #"The request body must be a JSON object such as {"amount": 100, "orderId": "o-1"}."#
}
