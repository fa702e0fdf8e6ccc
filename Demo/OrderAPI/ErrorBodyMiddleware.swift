import Hummingbird
import Logging

/// Turns every failure below it into an ``OrderAPIError``, so each answers the JSON error
/// body: the router's `404` for an unmatched request becomes `405` with `Allow` when the
/// path exists with other methods, Hummingbird's own errors (a body too large) keep their
/// status, and unexpected errors are logged and answer `500`.
struct ErrorBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    @concurrent
    func handle(
        _ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as OrderAPIError {
            throw error
        } catch let error as HTTPError where error.status == .notFound {
            let path = request.uri.path
            let allowed = OrderRoutes.allowedMethods(on: path)
            guard allowed.isEmpty else {
                throw OrderAPIError(
                    status: .methodNotAllowed,
                    message:
                        "\(path) does not serve \(request.method.rawValue); it serves \(allowed.map(\.rawValue).joined(separator: ", ")).",
                    allowedMethods: allowed
                )
            }
            throw OrderAPIError(
                status: .notFound, message: "No route \(request.method.rawValue) \(path); the API serves \(Self.summary).")
        } catch let error as any HTTPResponseError {
            let message =
                error.status == .contentTooLarge
                ? "The request body is larger than \(context.maxUploadSize) bytes."
                : "\(error.status.code) \(error.status.reasonPhrase)."
            throw OrderAPIError(status: error.status, message: message)
        } catch {
            context.logger.error("Request failed", metadata: ["error": "\(error)"])
            throw OrderAPIError(status: .internalServerError, message: "The request failed; see the server log.")
        }
    }

    /// The routes, e.g. `GET /health, HEAD /health, POST /orders, …`.
    static var summary: String {
        OrderRoutes.routes.flatMap { route in route.methods.map { "\($0.0.rawValue) \(route.path)" } }.joined(separator: ", ")
    }
}
