import EventSourcery

/// The rules of an order id, the `<id>` part of the stream `order-<id>`.
///
/// An order id is 1 to ``maximumLength`` ASCII letters, digits, `-` and `_`: the stream id
/// stays within ``StreamID/maximumLength`` bytes, and the id can be used in the path
/// `/orders/<id>` as it is.
enum OrderID {
    /// The stream category of orders.
    static let category = "order"

    /// The longest order id accepted, so that `order-<id>` is a valid ``StreamID``.
    static let maximumLength = StreamID.maximumLength - category.utf8.count - 1

    /// The order's stream, after checking `id` against the rules.
    ///
    /// - Parameters:
    ///   - id: The order id to check.
    ///   - name: How the error message names the id, such as `the field 'orderId'`.
    /// - Throws: ``OrderAPIError`` `400` naming `name` when `id` breaks a rule.
    static func stream(for id: String, named name: String) throws(OrderAPIError) -> StreamID {
        guard !id.isEmpty else {
            throw .badRequest("\(name) must not be empty.")
        }
        guard id.utf8.count <= maximumLength else {
            throw .badRequest("\(name) is \(id.utf8.count) bytes long; the limit is \(maximumLength).")
        }
        guard id.unicodeScalars.allSatisfy(isAllowed) else {
            throw .badRequest("\(name) may only contain the letters A-Z and a-z, the digits 0-9, '-' and '_'.")
        }
        do {
            return try StreamID(category: category, id: id)
        } catch {
            throw .badRequest("\(name) is not a valid order id: \(error.message)")
        }
    }

    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "-", "_": true
        default: false
        }
    }
}
