import Hummingbird

/// A failed request, answered with its status and the JSON body `{"error": "<message>"}`.
struct OrderAPIError: HTTPResponseError {
    /// The response's status.
    var status: HTTPResponse.Status
    /// What went wrong, naming the field or parameter to fix.
    var message: String
    /// For `405 Method Not Allowed`: the methods the path serves, sent as the `Allow` header.
    var allowedMethods: [HTTPRequest.Method] = []

    /// A `400 Bad Request` with `message`.
    static func badRequest(_ message: String) -> OrderAPIError {
        OrderAPIError(status: .badRequest, message: message)
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = try OrderRoutes.encoder.encode(["error": message], from: request, context: context)
        response.status = status
        if !allowedMethods.isEmpty {
            response.headers[.allow] = allowedMethods.map(\.rawValue).joined(separator: ", ")
        }
        return request.method == .head ? response.withoutBody() : response
    }
}
