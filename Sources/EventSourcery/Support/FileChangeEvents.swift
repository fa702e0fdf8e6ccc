/// What a batch of Linux `inotify` events means for one file: the pure decision of
/// ``FileChangeWatcher``, tested without a kernel.
///
/// The watcher holds two watches: one on the file itself for its writes (``fileMask``), so
/// that writes to the other files of its directory (other stores' logs) wake nobody, and
/// one on the directory (``directoryMask``) for the file being created or moved into place,
/// after which the file's watch is set up again, and for the end of the directory.
///
/// `read(2)` on an inotify descriptor returns whole `struct inotify_event` records: a 32-bit
/// watch descriptor, a 32-bit mask, a 32-bit cookie, a 32-bit name length, then the
/// NUL-padded name of the file in the watched directory (no name for a file's own watch).
package enum FileChangeEvents {
    /// What the watcher does after a batch of events.
    package enum Decision: Equatable, Sendable {
        /// Nothing happened to the file.
        case unchanged
        /// The file was written: wake the waiters.
        case changed
        /// The file was created, moved into place or removed, or the kernel dropped events
        /// (which may have been such changes): wake the waiters and set up the file's watch
        /// again.
        case replaced
        /// The directory's watch is gone (the directory was deleted, moved or unmounted):
        /// stop watching; waiters fall back to polling.
        case watchEnded
    }

    /// `IN_MODIFY`: the file (or a file in the directory) was written.
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
    /// `IN_IGNORED`: the watch was removed (for the file's watch: the file was deleted).
    package static let ignored: UInt32 = 0x0000_8000

    /// The events of the file's own watch: its writes.
    package static let fileMask: UInt32 = modified
    /// The events of the directory's watch: the file appearing, and the end of the directory.
    package static let directoryMask: UInt32 = movedTo | created | deletedSelf | movedSelf

    /// The size of an event record without its name.
    package static let headerSize = 16

    /// Decides what `events`, the bytes of one `read(2)`, mean for the file named `fileName`
    /// watched by `fileWatch` (`nil` while the file has no watch) in the directory watched
    /// by `directoryWatch`.
    ///
    /// The end of the directory's watch wins over everything in the same batch, a
    /// replacement over a write (the change is still found by polling); records of an
    /// earlier watch of the file are skipped; a truncated record ends the parse.
    package static func decision(
        of events: some Collection<UInt8>, for fileName: String, directoryWatch: Int32, fileWatch: Int32?
    ) -> Decision {
        let bytes = Array(events)
        var decision = Decision.unchanged
        var offset = 0
        while offset + headerSize <= bytes.count {
            let watch = Int32(bitPattern: word(bytes, at: offset))
            let mask = word(bytes, at: offset + 4)
            let nameLength = Int(word(bytes, at: offset + 12))
            let nameEnd = offset + headerSize + nameLength
            guard nameEnd <= bytes.count else { break }
            if mask & overflowed != 0 {
                decision = .replaced
            } else if watch == directoryWatch {
                if mask & (ignored | deletedSelf | movedSelf | unmounted) != 0 { return .watchEnded }
                let name = bytes[(offset + headerSize)..<nameEnd].prefix { $0 != 0 }
                if mask & (movedTo | created) != 0, name.elementsEqual(fileName.utf8) { decision = .replaced }
            } else if watch == fileWatch {
                if mask & ignored != 0 {
                    decision = .replaced
                } else if mask & modified != 0, decision == .unchanged {
                    decision = .changed
                }
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
