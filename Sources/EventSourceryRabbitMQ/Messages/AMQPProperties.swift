public import Foundation

/// The basic properties of an AMQP message.
///
/// Every field is optional; unset fields are not sent. The event wire contract uses
/// ``messageId``, ``type``, ``contentType``, ``deliveryMode`` 2, ``timestamp``, ``appId``,
/// ``correlationId`` and ``headers``.
public struct AMQPProperties: Sendable, Hashable {
    /// The delivery mode.
    public enum DeliveryMode: UInt8, Sendable, Hashable {
        /// Kept in memory only (1).
        case transient = 1
        /// Written to disk by durable queues (2).
        case persistent = 2
    }

    /// The MIME type of the body, e.g. `application/json`.
    public var contentType: String?
    /// The encoding of the body, e.g. `gzip`.
    public var contentEncoding: String?
    /// Application headers.
    public var headers: AMQPTable?
    /// Transient or persistent.
    public var deliveryMode: DeliveryMode?
    /// Priority 0...9.
    public var priority: UInt8?
    /// The correlation id.
    public var correlationId: String?
    /// A queue to reply to.
    public var replyTo: String?
    /// A per-message TTL in milliseconds, as a string.
    public var expiration: String?
    /// The message id (the dedupe key in the event wire contract).
    public var messageId: String?
    /// The time the message was created; AMQP carries whole seconds.
    public var timestamp: Date?
    /// The message type name.
    public var type: String?
    /// The user id, validated by the broker against the connection's user.
    public var userId: String?
    /// The id of the application that produced the message.
    public var appId: String?

    /// Creates properties.
    public init(
        contentType: String? = nil,
        contentEncoding: String? = nil,
        headers: AMQPTable? = nil,
        deliveryMode: DeliveryMode? = nil,
        priority: UInt8? = nil,
        correlationId: String? = nil,
        replyTo: String? = nil,
        expiration: String? = nil,
        messageId: String? = nil,
        timestamp: Date? = nil,
        type: String? = nil,
        userId: String? = nil,
        appId: String? = nil
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationId = correlationId
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageId = messageId
        self.timestamp = timestamp
        self.type = type
        self.userId = userId
        self.appId = appId
    }
}
