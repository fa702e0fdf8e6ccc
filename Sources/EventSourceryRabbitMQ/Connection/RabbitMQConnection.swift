import CRabbitMQ
import Foundation
import Logging

/// One rabbitmq-c connection: a thin, synchronous layer that turns C calls, replies and
/// frames into Swift values and ``AMQPError``s.
///
/// Thread-confined: created, used and destroyed on one connection thread only (rabbitmq-c
/// connections are not thread-safe). Every call may block on the socket.
final class RabbitMQConnection {
    /// A frame of interest read from the broker.
    enum Event {
        case delivery(channel: UInt16, Delivery)
        case ack(channel: UInt16, tag: UInt64, multiple: Bool)
        case nack(channel: UInt16, tag: UInt64, multiple: Bool)
        case returned(channel: UInt16, messageId: String?, replyCode: UInt16, replyText: String)
        case channelClosed(channel: UInt16, AMQPError)
        case cancelledByBroker(channel: UInt16, consumerTag: String)
        case other
    }

    private let state: amqp_connection_state_t
    private let arena = Arena()
    private var interner = StringInterner()
    private let vhost: String
    /// The node this connection is open to.
    let endpoint: AMQPConnection.Configuration.Endpoint
    let generation: UInt64
    /// False once the connection failed or was closed; the object must then be discarded.
    private(set) var isOpen = false
    /// Channels the broker closed since they were opened; reopen before use.
    private(set) var closedChannels: Set<UInt16> = []

    /// Opens the socket to `endpoint`, logs in and negotiates limits.
    init(
        configuration: AMQPConnection.Configuration, endpoint: AMQPConnection.Configuration.Endpoint, generation: UInt64
    )
        throws(AMQPError)
    {
        guard let state = amqp_new_connection() else {
            throw AMQPError(.protocolError, "rabbitmq-c could not allocate a connection")
        }
        self.state = state
        self.vhost = configuration.vhost
        self.endpoint = endpoint
        self.generation = generation
        // From here on deinit destroys `state`, also when init throws.
        try open(configuration)
        isOpen = true
    }

    deinit {
        amqp_destroy_connection(state)
    }

    private func open(_ configuration: AMQPConnection.Configuration) throws(AMQPError) {
        let socket: OpaquePointer?
        if let tls = endpoint.tls {
            socket = amqp_ssl_socket_new(state)
            guard let socket else { throw AMQPError(.tlsFailure, "could not create a TLS socket") }
            amqp_ssl_socket_set_verify_peer(socket, tls.verifyPeer ? 1 : 0)
            amqp_ssl_socket_set_verify_hostname(socket, tls.verifyHostname ? 1 : 0)
            if let caFile = tls.caFile {
                let status = amqp_ssl_socket_set_cacert(socket, caFile)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError(.tlsFailure, "could not load the CA file \(caFile): \(Self.statusText(status))")
                }
            }
            if let cert = tls.certificateFile, let key = tls.keyFile {
                let status = amqp_ssl_socket_set_key(socket, cert, key)
                guard status == AMQP_STATUS_OK.rawValue else {
                    throw AMQPError(.tlsFailure, "could not load the client certificate \(cert) or key \(key): \(Self.statusText(status))")
                }
            }
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else { throw AMQPError(.protocolError, "could not create a socket") }

        var connectTimeout = Self.timeval(configuration.connectTimeout)
        let status = amqp_socket_open_noblock(socket, endpoint.host, Int32(endpoint.port), &connectTimeout)
        if status != AMQP_STATUS_OK.rawValue {
            let savedErrno = errno
            throw Self.openError(status, errno: savedErrno, endpoint: endpoint, connectTimeout: configuration.connectTimeout)
        }
        _ = amqp_set_handshake_timeout(state, &connectTimeout)
        var rpcTimeout = Self.timeval(.seconds(30))
        _ = amqp_set_rpc_timeout(state, &rpcTimeout)

        arena.reset()
        var properties = arena.table(
            [
                "product": "EventSourcery EventSourceryRabbitMQ",
                "platform": "Swift",
                "capabilities": .table([
                    "authentication_failure_close": true,
                    "consumer_cancel_notify": true,
                    "publisher_confirms": true,
                    "basic.nack": true,
                    "connection.blocked": true,
                ]),
            ].merging(configuration.connectionName.map { ["connection_name": AMQPFieldValue.string($0)] } ?? [:]) { $1 })
        let heartbeat = Int32(clamping: Int64(configuration.heartbeat.seconds.rounded()))
        let reply = cramqp_login_plain(
            state, arena.cString(configuration.vhost), Int32(configuration.channelMax),
            Int32(clamping: Int64(configuration.frameMax)), heartbeat, &properties,
            arena.cString(endpoint.user), arena.cString(endpoint.password)
        )
        arena.reset()
        if let error = replyError(reply, channel: 0, context: "logging in", duringLogin: true) {
            throw error
        }
    }

    /// Closes the connection politely (best effort) and marks it unusable.
    func close() {
        guard isOpen else { return }
        isOpen = false
        var timeout = Self.timeval(.seconds(2))
        _ = amqp_set_rpc_timeout(state, &timeout)
        _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
    }

    /// The socket descriptor, for `poll`.
    var fileDescriptor: Int32 { amqp_get_sockfd(state) }

    /// Holds back partial TCP segments (Linux `TCP_CORK`) so a run of small frames, such as
    /// many acknowledgements or a burst of publishes, leaves in few segments; uncorking sends
    /// at once. Never leave the socket corked while waiting for the broker.
    func setCorked(_ corked: Bool) {
        #if os(Linux)
            var value: Int32 = corked ? 1 : 0
            _ = setsockopt(fileDescriptor, Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    /// Whether rabbitmq-c holds bytes or frames that `poll` on the socket cannot see.
    var hasBufferedInput: Bool {
        amqp_data_in_buffer(state) != 0 || amqp_frames_enqueued(state) != 0
    }

    /// The heartbeat interval the broker and client agreed on, in seconds (0 = off).
    var negotiatedHeartbeat: Int { Int(amqp_get_heartbeat(state)) }

    // MARK: Channels and RPCs

    func openChannel(_ channel: UInt16) throws(AMQPError) {
        if amqp_channel_open(state, channel) == nil {
            try throwReply(channel: channel, context: "opening channel \(channel)")
        }
        closedChannels.remove(channel)
    }

    func closeChannel(_ channel: UInt16) throws(AMQPError) {
        let reply = amqp_channel_close(state, channel, AMQP_REPLY_SUCCESS)
        if let error = replyError(reply, channel: channel, context: "closing channel \(channel)") { throw error }
        closedChannels.insert(channel)
    }

    func declare(_ exchange: AMQPExchange, channel: UInt16) throws(AMQPError) {
        arena.reset()
        defer { arena.reset() }
        let result = amqp_exchange_declare(
            state, channel, arena.bytes(exchange.name), arena.bytes(exchange.kind.name), 0,
            exchange.durable ? 1 : 0, exchange.autoDelete ? 1 : 0, exchange.internal ? 1 : 0, arena.table(exchange.arguments)
        )
        if result == nil {
            try throwReply(
                channel: channel,
                context:
                    "declaring exchange \"\(exchange.name)\" (type \(exchange.kind), durable \(exchange.durable)); an exchange of that name exists with other settings"
            )
        }
    }

    func declare(_ queue: AMQPQueue, channel: UInt16, passive: Bool = false) throws(AMQPError) -> AMQPQueueState {
        arena.reset()
        defer { arena.reset() }
        let result = amqp_queue_declare(
            state, channel, arena.bytes(queue.name), passive ? 1 : 0, queue.durable ? 1 : 0,
            queue.exclusive ? 1 : 0, queue.autoDelete ? 1 : 0, arena.table(queue.arguments)
        )
        guard let result else {
            let context =
                passive
                ? "checking queue \"\(queue.name)\""
                : "declaring queue \"\(queue.name)\" (durable \(queue.durable), arguments \(queue.arguments)); a queue of that name exists with other settings"
            try throwReply(channel: channel, context: context)
        }
        return AMQPQueueState(
            name: CDecode.string(result.pointee.queue), messageCount: result.pointee.message_count,
            consumerCount: result.pointee.consumer_count)
    }

    func bind(_ binding: AMQPBinding, channel: UInt16) throws(AMQPError) {
        try change(binding, binds: true, channel: channel)
    }

    func unbind(_ binding: AMQPBinding, channel: UInt16) throws(AMQPError) {
        try change(binding, binds: false, channel: channel)
    }

    /// Makes (`queue.bind`, `exchange.bind`) or removes (`queue.unbind`, `exchange.unbind`)
    /// a binding of a queue or an exchange.
    private func change(_ binding: AMQPBinding, binds: Bool, channel: UInt16) throws(AMQPError) {
        arena.reset()
        defer { arena.reset() }
        let (destination, source, key, arguments) = (
            arena.bytes(binding.queue), arena.bytes(binding.exchange), arena.bytes(binding.routingKey), arena.table(binding.arguments)
        )
        let done =
            switch (binding.destinationKind, binds) {
            case (.queue, true): amqp_queue_bind(state, channel, destination, source, key, arguments) != nil
            case (.queue, false): amqp_queue_unbind(state, channel, destination, source, key, arguments) != nil
            case (.exchange, true): amqp_exchange_bind(state, channel, destination, source, key, arguments) != nil
            case (.exchange, false): amqp_exchange_unbind(state, channel, destination, source, key, arguments) != nil
            }
        guard !done else { return }
        let subject = "\(binding.destinationKind) \"\(binding.queue)\""
        try throwReply(
            channel: channel,
            context: binds
                ? "binding \(subject) to exchange \"\(binding.exchange)\" with key \"\(binding.routingKey)\""
                : "unbinding \(subject) from exchange \"\(binding.exchange)\"")
    }

    func purgeQueue(_ name: String, channel: UInt16) throws(AMQPError) -> UInt32 {
        arena.reset()
        defer { arena.reset() }
        guard let result = amqp_queue_purge(state, channel, arena.bytes(name)) else {
            try throwReply(channel: channel, context: "purging queue \"\(name)\"")
        }
        return result.pointee.message_count
    }

    func deleteQueue(_ name: String, ifUnused: Bool, ifEmpty: Bool, channel: UInt16) throws(AMQPError) -> UInt32 {
        arena.reset()
        defer { arena.reset() }
        guard let result = amqp_queue_delete(state, channel, arena.bytes(name), ifUnused ? 1 : 0, ifEmpty ? 1 : 0) else {
            try throwReply(channel: channel, context: "deleting queue \"\(name)\"")
        }
        return result.pointee.message_count
    }

    func deleteExchange(_ name: String, ifUnused: Bool, channel: UInt16) throws(AMQPError) {
        arena.reset()
        defer { arena.reset() }
        if amqp_exchange_delete(state, channel, arena.bytes(name), ifUnused ? 1 : 0) == nil {
            try throwReply(channel: channel, context: "deleting exchange \"\(name)\"")
        }
    }

    func confirmSelect(channel: UInt16) throws(AMQPError) {
        if amqp_confirm_select(state, channel) == nil {
            try throwReply(channel: channel, context: "enabling publisher confirms")
        }
    }

    func qos(prefetchCount: UInt16, channel: UInt16) throws(AMQPError) {
        if amqp_basic_qos(state, channel, 0, prefetchCount, 0) == nil {
            try throwReply(channel: channel, context: "setting prefetch \(prefetchCount)")
        }
    }

    func consume(queue: String, consumerTag: String, exclusive: Bool, channel: UInt16) throws(AMQPError) -> String {
        arena.reset()
        defer { arena.reset() }
        guard
            let result = amqp_basic_consume(
                state, channel, arena.bytes(queue), arena.bytes(consumerTag), 0, 0, exclusive ? 1 : 0, amqp_empty_table)
        else {
            try throwReply(channel: channel, context: "consuming from queue \"\(queue)\"")
        }
        return CDecode.string(result.pointee.consumer_tag)
    }

    func cancel(consumerTag: String, channel: UInt16) throws(AMQPError) {
        arena.reset()
        defer { arena.reset() }
        if amqp_basic_cancel(state, channel, arena.bytes(consumerTag)) == nil {
            try throwReply(channel: channel, context: "cancelling consumer \"\(consumerTag)\"")
        }
    }

    // MARK: Publishing and acknowledging

    /// Writes one message to the socket (no confirm wait).
    func publish(_ message: OutgoingMessage, channel: UInt16) throws(AMQPError) {
        arena.reset()
        var properties = cProperties(message.properties)
        let exchange = arena.bytes(message.exchange)
        let routingKey = arena.bytes(message.routingKey)
        let status = message.body.withUnsafeBytes { body in
            amqp_basic_publish(
                state, channel, exchange, routingKey, message.mandatory ? 1 : 0, 0, &properties,
                amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress))
            )
        }
        if status != AMQP_STATUS_OK.rawValue {
            throw connectionFailure(status, context: "publishing to exchange \"\(message.exchange)\"")
        }
    }

    func ack(tag: UInt64, multiple: Bool, channel: UInt16) throws(AMQPError) {
        let status = amqp_basic_ack(state, channel, tag, multiple ? 1 : 0)
        if status != AMQP_STATUS_OK.rawValue { throw connectionFailure(status, context: "acknowledging") }
    }

    func nack(tag: UInt64, multiple: Bool, requeue: Bool, channel: UInt16) throws(AMQPError) {
        let status = amqp_basic_nack(state, channel, tag, multiple ? 1 : 0, requeue ? 1 : 0)
        if status != AMQP_STATUS_OK.rawValue { throw connectionFailure(status, context: "rejecting") }
    }

    func reject(tag: UInt64, requeue: Bool, channel: UInt16) throws(AMQPError) {
        let status = amqp_basic_reject(state, channel, tag, requeue ? 1 : 0)
        if status != AMQP_STATUS_OK.rawValue { throw connectionFailure(status, context: "rejecting") }
    }

    // MARK: Reading frames

    /// Reads the next frame of interest; `nil` when none arrived within `timeout`
    /// (`nil` timeout blocks). Heartbeats are sent and checked inside rabbitmq-c.
    func nextEvent(timeout: Duration?) throws(AMQPError) -> Event? {
        var frame = amqp_frame_t()
        let status: Int32
        if let timeout {
            var tv = Self.timeval(timeout)
            status = amqp_simple_wait_frame_noblock(state, &frame, &tv)
        } else {
            status = amqp_simple_wait_frame(state, &frame)
        }
        if status == AMQP_STATUS_TIMEOUT.rawValue { return nil }
        if status != AMQP_STATUS_OK.rawValue {
            throw connectionFailure(status, context: "reading from the broker")
        }
        let channel = frame.channel
        defer { releaseBuffers(channel: channel) }
        guard frame.frame_type == UInt8(AMQP_FRAME_METHOD) else { return .other }
        let decoded = frame.payload.method.decoded
        switch frame.payload.method.id {
        case MethodID.basicDeliver:
            let deliver = decoded!.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            let consumerTag = interner.string(deliver.consumer_tag)
            let exchange = interner.string(deliver.exchange)
            let routingKey = interner.string(deliver.routing_key)
            let (properties, body) = try readContent(channel: channel)
            let delivery = Delivery(
                body: body, properties: properties, exchange: exchange, routingKey: routingKey,
                isRedelivered: deliver.redelivered != 0, deliveryTag: deliver.delivery_tag,
                consumerTag: consumerTag, generation: generation
            )
            return .delivery(channel: channel, delivery)
        case MethodID.basicAck:
            let ack = decoded!.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            return .ack(channel: channel, tag: ack.delivery_tag, multiple: ack.multiple != 0)
        case MethodID.basicNack:
            let nack = decoded!.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            return .nack(channel: channel, tag: nack.delivery_tag, multiple: nack.multiple != 0)
        case MethodID.basicReturn:
            let returned = decoded!.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            let replyCode = returned.reply_code
            let replyText = CDecode.string(returned.reply_text)
            let (properties, _) = try readContent(channel: channel)
            return .returned(channel: channel, messageId: properties.messageId, replyCode: replyCode, replyText: replyText)
        case MethodID.channelClose:
            let close = decoded!.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            let error = AMQPError.channelClose(
                replyCode: close.reply_code, replyText: CDecode.string(close.reply_text), context: "working on channel \(channel)")
            sendChannelCloseOk(channel)
            return .channelClosed(channel: channel, error)
        case MethodID.connectionClose:
            let close = decoded!.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let error = AMQPError.connectionClose(
                replyCode: close.reply_code, replyText: CDecode.string(close.reply_text), duringLogin: false, vhost: vhost)
            sendConnectionCloseOk()
            isOpen = false
            throw error
        case MethodID.basicCancel:
            let cancel = decoded!.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = CDecode.string(cancel.consumer_tag)
            if cancel.nowait == 0 {
                var ok = amqp_basic_cancel_ok_t(consumer_tag: cancel.consumer_tag)
                _ = amqp_send_method(state, channel, MethodID.basicCancelOk, &ok)
            }
            return .cancelledByBroker(channel: channel, consumerTag: tag)
        default:
            return .other
        }
    }

    /// Reads the header and body frames that follow `basic.deliver` / `basic.return`.
    private func readContent(channel: UInt16) throws(AMQPError) -> (AMQPProperties, Data) {
        var message = amqp_message_t()
        let reply = amqp_read_message(state, channel, &message, 0)
        if reply.reply_type != AMQP_RESPONSE_NORMAL {
            if let error = replyError(reply, channel: channel, context: "reading a message body") { throw error }
        }
        defer { amqp_destroy_message(&message) }
        return (properties(message.properties), CDecode.data(message.body))
    }

    private func releaseBuffers(channel: UInt16) {
        if amqp_frames_enqueued(state) == 0 {
            amqp_maybe_release_buffers(state)
        } else {
            amqp_maybe_release_buffers_on_channel(state, channel)
        }
    }

    // MARK: Properties

    private func cProperties(_ properties: AMQPProperties) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: UInt32 = 0
        if let value = properties.contentType { c.content_type = arena.bytes(value); flags |= PropertyFlag.contentType }
        if let value = properties.contentEncoding { c.content_encoding = arena.bytes(value); flags |= PropertyFlag.contentEncoding }
        if let value = properties.headers { c.headers = arena.table(value); flags |= PropertyFlag.headers }
        if let value = properties.deliveryMode { c.delivery_mode = value.rawValue; flags |= PropertyFlag.deliveryMode }
        if let value = properties.priority { c.priority = value; flags |= PropertyFlag.priority }
        if let value = properties.correlationId { c.correlation_id = arena.bytes(value); flags |= PropertyFlag.correlationId }
        if let value = properties.replyTo { c.reply_to = arena.bytes(value); flags |= PropertyFlag.replyTo }
        if let value = properties.expiration { c.expiration = arena.bytes(value); flags |= PropertyFlag.expiration }
        if let value = properties.messageId { c.message_id = arena.bytes(value); flags |= PropertyFlag.messageId }
        if let value = properties.timestamp {
            c.timestamp = UInt64(max(0, value.timeIntervalSince1970.rounded(.down)))
            flags |= PropertyFlag.timestamp
        }
        if let value = properties.type { c.type = arena.bytes(value); flags |= PropertyFlag.type }
        if let value = properties.userId { c.user_id = arena.bytes(value); flags |= PropertyFlag.userId }
        if let value = properties.appId { c.app_id = arena.bytes(value); flags |= PropertyFlag.appId }
        c._flags = flags
        return c
    }

    private func properties(_ c: amqp_basic_properties_t) -> AMQPProperties {
        let flags = c._flags
        func has(_ flag: UInt32) -> Bool { flags & flag != 0 }
        var p = AMQPProperties()
        if has(PropertyFlag.contentType) { p.contentType = interner.string(c.content_type) }
        if has(PropertyFlag.contentEncoding) { p.contentEncoding = CDecode.string(c.content_encoding) }
        if has(PropertyFlag.headers) { p.headers = CDecode.table(c.headers) }
        if has(PropertyFlag.deliveryMode) { p.deliveryMode = AMQPProperties.DeliveryMode(rawValue: c.delivery_mode) }
        if has(PropertyFlag.priority) { p.priority = c.priority }
        if has(PropertyFlag.correlationId) { p.correlationId = CDecode.string(c.correlation_id) }
        if has(PropertyFlag.replyTo) { p.replyTo = CDecode.string(c.reply_to) }
        if has(PropertyFlag.expiration) { p.expiration = CDecode.string(c.expiration) }
        if has(PropertyFlag.messageId) { p.messageId = CDecode.string(c.message_id) }
        if has(PropertyFlag.timestamp) { p.timestamp = Date(timeIntervalSince1970: TimeInterval(c.timestamp)) }
        if has(PropertyFlag.type) { p.type = interner.string(c.type) }
        if has(PropertyFlag.userId) { p.userId = CDecode.string(c.user_id) }
        if has(PropertyFlag.appId) { p.appId = interner.string(c.app_id) }
        return p
    }

    // MARK: Errors

    private func throwReply(channel: UInt16, context: String) throws(AMQPError) -> Never {
        let reply = amqp_get_rpc_reply(state)
        throw replyError(reply, channel: channel, context: context)
            ?? AMQPError(.protocolError, "rabbitmq-c reported a failure without a reason while \(context)")
    }

    /// Turns an RPC reply into an error (nil for a normal reply), answering the broker's
    /// close methods and marking the connection or channel closed.
    private func replyError(_ reply: amqp_rpc_reply_t, channel: UInt16, context: String, duringLogin: Bool = false) -> AMQPError? {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return nil
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            if duringLogin,
                reply.library_error == AMQP_STATUS_CONNECTION_CLOSED.rawValue || reply.library_error == AMQP_STATUS_SOCKET_CLOSED.rawValue
            {
                isOpen = false
                return AMQPError(
                    .authenticationFailed,
                    "the broker closed the connection during login; check the user and password (\(Self.statusText(reply.library_error)))")
            }
            return connectionFailure(reply.library_error, context: context)
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case MethodID.connectionClose:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                let error = AMQPError.connectionClose(
                    replyCode: close.reply_code, replyText: CDecode.string(close.reply_text), duringLogin: duringLogin, vhost: vhost)
                sendConnectionCloseOk()
                isOpen = false
                return error
            case MethodID.channelClose:
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                let error = AMQPError.channelClose(
                    replyCode: close.reply_code, replyText: CDecode.string(close.reply_text), context: context)
                sendChannelCloseOk(channel)
                closedChannels.insert(channel)
                return error
            default:
                isOpen = false
                return AMQPError(.protocolError, "unexpected reply method 0x\(String(reply.reply.id, radix: 16)) while \(context)")
            }
        default:
            isOpen = false
            return AMQPError(.protocolError, "no reply from rabbitmq-c while \(context)")
        }
    }

    /// Maps a library status that means the connection is unusable.
    private func connectionFailure(_ status: Int32, context: String) -> AMQPError {
        isOpen = false
        let text = Self.statusText(status)
        switch status {
        case AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue:
            return AMQPError(.heartbeatTimeout, "the broker missed its heartbeats while \(context); the connection is dead")
        case AMQP_STATUS_TIMEOUT.rawValue:
            return AMQPError(.timeout, "timed out while \(context)")
        case AMQP_STATUS_SSL_ERROR.rawValue, AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue,
            AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue, AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue:
            return AMQPError(.tlsFailure, "TLS failure while \(context): \(text)")
        case AMQP_STATUS_BAD_AMQP_DATA.rawValue, AMQP_STATUS_UNKNOWN_CLASS.rawValue, AMQP_STATUS_UNKNOWN_METHOD.rawValue,
            AMQP_STATUS_UNEXPECTED_STATE.rawValue, AMQP_STATUS_WRONG_METHOD.rawValue:
            return AMQPError(.protocolError, "protocol error while \(context): \(text)")
        default:
            return AMQPError(.connectionClosed, "the connection was lost while \(context): \(text)")
        }
    }

    private static func openError(
        _ status: Int32, errno savedErrno: Int32, endpoint: AMQPConnection.Configuration.Endpoint, connectTimeout: Duration
    ) -> AMQPError {
        let target = endpoint.address
        switch status {
        case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED.rawValue:
            return AMQPError(.hostNotFound, "could not resolve the host name \(endpoint.host)")
        case AMQP_STATUS_TIMEOUT.rawValue:
            return AMQPError(.timeout, "connecting to \(target) took longer than \(connectTimeout)")
        case AMQP_STATUS_SSL_ERROR.rawValue, AMQP_STATUS_SSL_CONNECTION_FAILED.rawValue,
            AMQP_STATUS_SSL_PEER_VERIFY_FAILED.rawValue, AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED.rawValue:
            return AMQPError(
                .tlsFailure, "the TLS handshake with \(target) failed: \(statusText(status)); check the CA file, certificates and host name"
            )
        default:
            return AMQPError(
                .connectionRefused, "could not connect to \(target): \(statusText(status)); is the broker running and listening there?")
        }
    }

    private func sendChannelCloseOk(_ channel: UInt16) {
        var ok = amqp_channel_close_ok_t(dummy: 0)
        _ = amqp_send_method(state, channel, MethodID.channelCloseOk, &ok)
        closedChannels.insert(channel)
    }

    private func sendConnectionCloseOk() {
        var ok = amqp_connection_close_ok_t(dummy: 0)
        _ = amqp_send_method(state, 0, MethodID.connectionCloseOk, &ok)
    }

    static func statusText(_ status: Int32) -> String {
        guard let text = amqp_error_string2(status) else { return "status \(status)" }
        return String(cString: text)
    }

    static func timeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return CRabbitMQ.timeval(tv_sec: Int(max(0, seconds)), tv_usec: Int(max(0, attoseconds / 1_000_000_000_000)))
    }
}

/// AMQP method ids (class id << 16 | method id); the C macros use casts Swift cannot import.
enum MethodID {
    static let connectionClose: amqp_method_number_t = 0x000A_0032
    static let connectionCloseOk: amqp_method_number_t = 0x000A_0033
    static let channelClose: amqp_method_number_t = 0x0014_0028
    static let channelCloseOk: amqp_method_number_t = 0x0014_0029
    static let basicCancel: amqp_method_number_t = 0x003C_001E
    static let basicCancelOk: amqp_method_number_t = 0x003C_001F
    static let basicReturn: amqp_method_number_t = 0x003C_0032
    static let basicDeliver: amqp_method_number_t = 0x003C_003C
    static let basicAck: amqp_method_number_t = 0x003C_0050
    static let basicNack: amqp_method_number_t = 0x003C_0078
}

/// `amqp_basic_properties_t._flags` bits.
enum PropertyFlag {
    static let contentType: UInt32 = 1 << 15
    static let contentEncoding: UInt32 = 1 << 14
    static let headers: UInt32 = 1 << 13
    static let deliveryMode: UInt32 = 1 << 12
    static let priority: UInt32 = 1 << 11
    static let correlationId: UInt32 = 1 << 10
    static let replyTo: UInt32 = 1 << 9
    static let expiration: UInt32 = 1 << 8
    static let messageId: UInt32 = 1 << 7
    static let timestamp: UInt32 = 1 << 6
    static let type: UInt32 = 1 << 5
    static let userId: UInt32 = 1 << 4
    static let appId: UInt32 = 1 << 3
}
