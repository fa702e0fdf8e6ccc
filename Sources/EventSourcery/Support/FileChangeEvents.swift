/// What a batch of Linux `inotify` events on a directory means for one file in it: the pure
/// decision of ``FileChangeWatcher``, tested without a kernel.
///
/// `read(2)` on an inotify descriptor returns whole `struct inotify_event` records: a 32-bit
/// watch descriptor, a 32-bit mask, a 32-bit cookie, a 32-bit name length, then the
/// NUL-padded name of the file in the watched directory.
package enum FileChangeEvents {
    /// What the watcher does after a batch of events.
    package enum Decision: Equatable, Sendable {
        /// Nothing happened to the file.
        case unchanged
        /// The file was written, created or moved into place (or the kernel dropped
        /// events, which may have been such changes): wake the waiters.
        case changed
        /// The watch is gone (the directory was deleted, moved or unmounted): stop
        /// watching; waiters fall back to polling.
        case watchEnded
    }

    /// `IN_MODIFY`: a file in the directory was written.
    package static let modified: UInt32 = 0x0000_0002
    /// `IN_MOVED_TO`: a file was moved into the directory.
    package static let movedTo: UInt32 = 0x0000_0080
    /// `IN_CREATE`: a file was created in the directory.
    package static let created: UInt32 = 0x0000_0100
    /// `IN_DELETE_SELF`: the watched directory was deleted.
    package static let deletedSelf: UInt32 = 0x0000_0400
    /// `IN_MOVE_SELF`: the watched directory was moved.
    package static let movedSelf: UInt32 = 0x0000_0800
    /// `IN_UNMOUNT`: the file system of the directory was unmounted.
    package static let unmounted: UInt32 = 0x0000_2000
    /// `IN_Q_OVERFLOW`: the kernel's event queue overflowed and events were dropped.
    package static let overflowed: UInt32 = 0x0000_4000
    /// `IN_IGNORED`: the watch was removed.
    package static let ignored: UInt32 = 0x0000_8000

    /// The events a watcher subscribes to: changes of the files in the directory and the
    /// end of the directory itself.
    package static let watchedMask: UInt32 = modified | movedTo | created | deletedSelf | movedSelf

    /// The size of an event record without its name.
    package static let headerSize = 16

    /// Decides what `events`, the bytes of one `read(2)`, mean for the file named `fileName`.
    ///
    /// The end of the watch wins over a change in the same batch (the change is still found
    /// by polling); a truncated record ends the parse.
    package static func decision(of events: some Collection<UInt8>, for fileName: String) -> Decision {
        let bytes = Array(events)
        let target = Array(fileName.utf8)
        var decision = Decision.unchanged
        var offset = 0
        while offset + headerSize <= bytes.count {
            let mask = word(bytes, at: offset + 4)
            let nameLength = Int(word(bytes, at: offset + 12))
            let nameEnd = offset + headerSize + nameLength
            guard nameEnd <= bytes.count else { break }
            if mask & (ignored | deletedSelf | movedSelf | unmounted) != 0 { return .watchEnded }
            let name = bytes[(offset + headerSize)..<nameEnd].prefix { $0 != 0 }
            if mask & overflowed != 0 || (mask & (modified | movedTo | created) != 0 && name.elementsEqual(target)) {
                decision = .changed
            }
            offset = nameEnd
        }
        return decision
    }

    /// The native-endian 32-bit word at `offset` (the kernel writes the records in the
    /// machine's byte order).
    private static func word(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        var value: UInt32 = 0
        withUnsafeMutableBytes(of: &value) { raw in
            for index in 0..<4 { raw[index] = bytes[offset + index] }
        }
        return value
    }
}
