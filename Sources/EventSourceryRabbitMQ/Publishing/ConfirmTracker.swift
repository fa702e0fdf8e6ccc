/// Tracks publisher confirms for one batch of messages on a channel in confirm mode.
///
/// A pure state machine: the caller publishes while ``canPublish`` is true, reports every
/// publish with ``didPublish(index:messageId:)`` and feeds in the broker's `basic.ack`,
/// `basic.nack` and `basic.return` frames, or a lost channel with
/// ``failOutstanding(_:)``. The broker numbers publishes on the channel 1, 2, 3, ...; the
/// tracker mirrors that counter from ``init(count:window:firstTag:)``.
struct ConfirmTracker {
    let window: Int
    let firstTag: UInt64
    private(set) var outcomes: [PublishOutcome?]
    private(set) var publishedCount = 0
    private(set) var resolvedCount = 0
    /// The lowest index that may still be unresolved.
    private var lowestOpen = 0
    /// Returned messages waiting for their ack, by index.
    private var returns: [Int: (UInt16, String)] = [:]
    /// Published, unresolved, not yet returned indices by message id, in publish order.
    private var openByMessageId: [String: [Int]] = [:]
    /// Unresolved indices of messages without a message id, in publish order.
    private var openWithoutId: [Int] = []
    private var messageIds: [String?]
    /// Whether a message is tracked for returns (mandatory).
    private var tracked: [Bool]

    init(count: Int, window: Int, firstTag: UInt64) {
        self.window = max(1, window)
        self.firstTag = firstTag
        self.outcomes = Array(repeating: nil, count: count)
        self.messageIds = Array(repeating: nil, count: count)
        self.tracked = Array(repeating: false, count: count)
    }

    /// Messages published and not yet resolved.
    var outstanding: Int { publishedCount - resolvedCount }
    /// Whether another message may be published without exceeding the window.
    var canPublish: Bool { publishedCount < outcomes.count && outstanding < window }
    /// Whether every message has an outcome.
    var isComplete: Bool { resolvedCount == outcomes.count }
    /// The delivery tag the broker assigns to the next publish.
    var nextTag: UInt64 { firstTag + UInt64(publishedCount) }

    /// Records that message `index` (the next one in order) was written to the socket.
    ///
    /// - Parameters:
    ///   - index: The message's position in the batch.
    ///   - messageId: Its message id, used to attribute a `basic.return` to it.
    ///   - mandatory: Whether the broker may return it; only mandatory messages are tracked
    ///     for returns.
    mutating func didPublish(index: Int, messageId: String?, mandatory: Bool = true) {
        precondition(index == publishedCount, "messages are published in order")
        if mandatory {
            messageIds[index] = messageId
            if let messageId {
                openByMessageId[messageId, default: []].append(index)
            } else {
                openWithoutId.append(index)
            }
            tracked[index] = true
        }
        publishedCount += 1
    }

    /// Handles `basic.ack`.
    mutating func ack(tag: UInt64, multiple: Bool) {
        settle(tag: tag, multiple: multiple, as: .confirmed)
    }

    /// Handles `basic.nack`.
    mutating func nack(tag: UInt64, multiple: Bool) {
        settle(tag: tag, multiple: multiple, as: .nacked)
    }

    /// Handles `basic.return`, which the broker sends before the ack of the same message.
    /// The message is identified by its message id (the oldest open one with that id), or
    /// for messages without an id, the oldest open message without an id.
    mutating func returned(messageId: String?, replyCode: UInt16, replyText: String) {
        var index: Int?
        if let messageId, var list = openByMessageId[messageId], !list.isEmpty {
            index = list.removeFirst()
            openByMessageId[messageId] = list.isEmpty ? nil : list
        } else if messageId == nil, !openWithoutId.isEmpty {
            index = openWithoutId.removeFirst()
        }
        if let index { returns[index] = (replyCode, replyText) }
    }

    /// Marks every published, unresolved message as not confirmed, and every message not yet
    /// published too: nothing more will be sent in this batch.
    mutating func failOutstanding(_ error: AMQPError) {
        for index in outcomes.indices where outcomes[index] == nil {
            outcomes[index] = .notConfirmed(error)
        }
        resolvedCount = outcomes.count
        publishedCount = outcomes.count
    }

    /// The final outcomes; every entry is set once ``isComplete``.
    var results: [PublishOutcome] {
        outcomes.map { $0 ?? .notConfirmed(AMQPError(.connectionClosed, "the message was not published")) }
    }

    private mutating func settle(tag: UInt64, multiple: Bool, as outcome: PublishOutcome) {
        guard tag >= firstTag else { return }
        let last = Int(tag - firstTag)
        guard last < publishedCount else { return }
        if multiple {
            var index = lowestOpen
            while index <= last {
                resolve(index, outcome)
                index += 1
            }
        } else {
            resolve(last, outcome)
        }
        while lowestOpen < publishedCount, outcomes[lowestOpen] != nil {
            lowestOpen += 1
        }
    }

    private mutating func resolve(_ index: Int, _ outcome: PublishOutcome) {
        guard outcomes[index] == nil else { return }
        if let (code, text) = returns.removeValue(forKey: index) {
            outcomes[index] = .returned(replyCode: code, replyText: text)
        } else {
            outcomes[index] = outcome
            guard tracked[index] else {
                resolvedCount += 1
                return
            }
            if let id = messageIds[index], var list = openByMessageId[id] {
                if let position = list.firstIndex(of: index) {
                    list.remove(at: position)
                    openByMessageId[id] = list.isEmpty ? nil : list
                }
            } else if messageIds[index] == nil, let position = openWithoutId.firstIndex(of: index) {
                openWithoutId.remove(at: position)
            }
        }
        resolvedCount += 1
    }
}
