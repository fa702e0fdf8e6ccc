public import Logging
import NIOConcurrencyHelpers

/// Keeps the messages logged through its ``logger``, for tests that wait for a service to
/// reach a point it only logs (such as a replica's subscriptions).
public final class LogCapture: Sendable {
    private let messages = NIOLockedValueBox<[String]>([])

    public init() {}

    /// A logger whose messages (info and above) are kept.
    public var logger: Logger {
        var logger = Logger(label: "capture") { _ in Handler(capture: self) }
        logger.logLevel = .info
        return logger
    }

    /// How many kept messages are `message`.
    public func count(_ message: String) -> Int {
        messages.withLockedValue { $0.filter { $0 == message }.count }
    }

    fileprivate func keep(_ message: String) {
        messages.withLockedValue { $0.append(message) }
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?

        func log(event: LogEvent) {
            capture.keep(event.message.description)
        }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
    }
}
