import DemoContexts
public import EventSourcery
import Foundation
public import Hummingbird
import Logging

/// The HTTP API of the order context: places orders and shows them with their timeline.
///
/// Register the routes on a router and serve it with a Hummingbird `Application`:
///
/// ```swift
/// let router = Router()
/// OrderRoutes(store: orderStore).register(on: router)
/// let app = Application(router: router)
/// try await app.runService()
/// ```
///
/// The routes:
/// - `POST /orders` with `{"amount": <positive integer>, "orderId": "<optional id>"}` places
///   the order with ``DemoContexts/DemoContext/placeOrder(_:amount:in:)`` (its `OrderPlaced`
///   starts the flow, so its id is the correlation id) and answers `201 Created` with
///   `{"orderId", "status", "amount", "eventId", "correlationId"}` and `Location: /orders/<id>`.
///   A generated order id is a lowercase UUID; a given one is 1 to 249 ASCII letters,
///   digits, `-` and `_`. An order id already in use answers `409 Conflict`.
/// - `GET /orders/{id}` answers the order's `status` (`placed`, `paid`, `cancelled` or
///   `completed`), `amount`, `correlationId` and `timeline`: each event of the stream
///   `order-<id>` with its type, time (ISO 8601 with fractional seconds), id, causation id,
///   stream version and fields. An unknown order answers `404 Not Found`.
/// - `GET /health` reads the store and answers `{"status": "ok"}`, or `503 Service
///   Unavailable` with the error body when the store cannot be read.
/// - `HEAD` on the `GET` routes answers the `GET` response's status and headers without a body.
///
/// Every failure answers `{"error": "<message>"}`: a bad request's message names the field
/// or parameter to fix; an unknown path answers `404 Not Found`, a method a path does not
/// serve `405 Method Not Allowed` with an `Allow` header, a body above the upload limit
/// `413 Content Too Large`. Bodies are JSON with sorted keys; ids are lowercase UUIDs.
public struct OrderRoutes: Sendable {
    /// The order context's store; its registry must know the order events
    /// (``DemoContexts/DemoContext/eventTypes``).
    public let store: EventStore

    /// Creates the routes over the order context's store.
    public init(store: EventStore) {
        self.store = store
    }

    /// What a route does.
    enum Endpoint: Sendable {
        case health, placeOrder, order
    }

    /// The routes: a path (`{id}` matches one segment) with the endpoint of each method.
    static let routes: [(path: String, methods: [(HTTPRequest.Method, Endpoint)])] = [
        ("/health", [(.get, .health), (.head, .health)]),
        ("/orders", [(.post, .placeOrder)]),
        ("/orders/{id}", [(.get, .order), (.head, .order)]),
    ]

    /// Adds the routes to `router`, a middleware that answers every failure (an unknown
    /// path or method, a body too large) with the JSON error body, and one that runs each
    /// request in a server span of the bootstrapped tracer, a child of the request's
    /// `traceparent` when it has one (the start of a new trace otherwise): the events a
    /// request appends carry that trace on through the outbox.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.add(middleware: TracingMiddleware())
        router.add(middleware: ErrorBodyMiddleware())
        for route in Self.routes {
            for (method, endpoint) in route.methods {
                router.on(RouterPath(route.path), method: method) { request, context in
                    let response = try await respond(endpoint, to: request, context: context)
                    return method == .head ? response.withoutBody() : response
                }
            }
        }
    }

    /// The methods the routes serve on `path`, in the order of ``routes``; empty for an unknown path.
    static func allowedMethods(on path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        return routes.filter { route in
            let pattern = route.path.split(separator: "/")
            return pattern.count == segments.count
                && zip(pattern, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }.flatMap { $0.methods.map(\.0) }
    }

    private func respond(_ endpoint: Endpoint, to request: Request, context: some RequestContext) async throws -> Response {
        switch endpoint {
        case .health: try await health(request, context: context)
        case .placeOrder: try await placeOrder(request, context: context)
        case .order: try await order(request, context: context)
        }
    }

    /// The encoder of every response body.
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Reads the store's head position: a store that cannot be read answers 503.
    private func health(_ request: Request, context: some RequestContext) async throws -> Response {
        do {
            _ = try await store.storage.headPosition()
        } catch {
            context.logger.error("Health check: the store cannot be read", metadata: ["error": "\(error)"])
            throw OrderAPIError(status: .serviceUnavailable, message: "The order store cannot be read; see the server log.")
        }
        return try Self.encoder.encode(["status": "ok"], from: request, context: context)
    }

    private func placeOrder(_ request: Request, context: some RequestContext) async throws -> Response {
        let body: PlaceOrderRequest
        do {
            body = try await JSONDecoder().decode(PlaceOrderRequest.self, from: request, context: context)
        } catch is DecodingError {
            throw OrderAPIError.badRequest(PlaceOrderRequest.notAnObject)
        }
        let orderID = body.orderID ?? UUID().lowercasedString
        _ = try OrderID.stream(for: orderID, named: "The field 'orderId'")
        let placed: EventEnvelope
        do {
            placed = try await DemoContext.placeOrder(orderID, amount: body.amount, in: store)
        } catch let error as EventStoreError where error.code == .concurrencyConflict {
            throw OrderAPIError(
                status: .conflict, message: "The order '\(orderID)' already exists; choose another 'orderId' or leave it out.")
        } catch {
            throw storeFailure(error, context: context)
        }
        context.logger.info(
            "Order placed",
            metadata: [
                "order.id": "\(orderID)", "order.amount": "\(body.amount)", "es.event_id": "\(placed.id.lowercasedString)",
            ])
        var response = try Self.encoder.encode(
            PlacedOrder(orderID: orderID, amount: body.amount, placed: placed), from: request, context: context)
        response.status = .created
        response.headers[.location] = "/orders/\(orderID)"
        return response
    }

    private func order(_ request: Request, context: some RequestContext) async throws -> Response {
        let orderID = try context.parameters.require("id")
        let stream = try OrderID.stream(for: orderID, named: "The order id in the path /orders/{id}")
        let events: [StoredEvent]
        do {
            events = try await store.load(stream)
        } catch {
            throw storeFailure(error, context: context)
        }
        guard !events.isEmpty else {
            throw OrderAPIError(status: .notFound, message: "No order '\(orderID)' exists.")
        }
        return try Self.encoder.encode(OrderView(orderID: orderID, events: events), from: request, context: context)
    }

    /// Logs a store failure and answers it without the store's details.
    private func storeFailure(_ error: any Error, context: some RequestContext) -> OrderAPIError {
        context.logger.error("Store failure", metadata: ["error": "\(error)"])
        if let error = error as? EventStoreError, error.code == .storageUnavailable {
            return OrderAPIError(status: .serviceUnavailable, message: "The order store is unavailable; try again later.")
        }
        return OrderAPIError(status: .internalServerError, message: "The order store failed; see the server log.")
    }
}
