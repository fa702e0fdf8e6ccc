import EventSourcery
import EventSourceryRabbitMQ
import Foundation
import Logging

extension ContextConsumer {
    /// Deletes the store's inbox entries older than `retention` now and then every
    /// ``Configuration/inboxPruneInterval``, until cancelled. A failure is logged and tried
    /// again at the next interval: pruning is housekeeping and never stops consuming.
    func pruneInbox(olderThan retention: Duration) async {
        while !Task.isCancelled {
            let cutoff = Date().addingTimeInterval(-retention.seconds)
            do {
                let deleted = try await store.storage.deleteInboxEntries(processedUpTo: cutoff)
                if deleted > 0 {
                    logger.info("Pruned inbox entries", metadata: ["inbox.deleted": "\(deleted)", "inbox.cutoff": "\(cutoff)"])
                }
            } catch {
                logger.warning("Pruning the inbox failed; trying again later", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.inboxPruneInterval)
        }
    }
}
