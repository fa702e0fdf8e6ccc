import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Calls a closure soon after a file is written by any process: on Linux with `inotify`,
/// read on a thread of its own (the read blocks, so it never runs on Swift's cooperative
/// pool). Elsewhere ``start()`` returns `false` and callers poll.
///
/// The file itself is watched for writes, so writes to the other files of its directory
/// wake nobody; the directory is watched for the file being created or moved into place,
/// so the watch survives the file being created, replaced or deleted. After reporting a
/// change the thread pauses for ``coalescingPause`` before it reads again: the further
/// writes of the same commit (one per page the commit writes to the log) are merged by the
/// kernel into one queued event instead of waking the thread, and every writer's
/// `write(2)`, each. Nothing starts in `init`; ``stop()`` (or releasing the watcher) ends
/// the thread. What a batch of events means is decided by ``FileChangeEvents``.
package final class FileChangeWatcher: Sendable {
    private struct State {
        var started = false
        /// The write end of the pipe whose closing stops the thread.
        var stopDescriptor: Int32?
    }

    /// The directory watched.
    package let directory: String
    /// The name of the watched file in ``directory``.
    package let fileName: String
    /// How long the thread waits after reporting a change before it reads again; a write in
    /// that time is reported when it ends. Shorter than a durable commit (its `fsync`), which
    /// a woken relay waits for anyway.
    package static let coalescingPause: Duration = .microseconds(500)
    private let onChange: @Sendable () -> Void
    private let state = NIOLockedValueBox(State())

    /// Creates a watcher of the file at `path` that calls `onChange` on its own thread after
    /// changes (several changes read together call it once).
    package init(path: String, onChange: @escaping @Sendable () -> Void) {
        let url = URL(fileURLWithPath: path)
        self.directory = url.deletingLastPathComponent().path
        self.fileName = url.lastPathComponent
        self.onChange = onChange
    }

    deinit {
        stop()
    }

    /// Starts watching, once; later calls return what the first returned.
    ///
    /// - Returns: `true` when the watch is in place (a change after this call is reported),
    ///   `false` when the platform has no `inotify` or the watch cannot be set up (the
    ///   per-user watch limit, a missing directory).
    @discardableResult
    package func start() -> Bool {
        state.withLockedValue { state in
            if state.started { return state.stopDescriptor != nil }
            state.started = true
            state.stopDescriptor = Self.startThread(directory: directory, fileName: fileName, onChange: onChange)
            return state.stopDescriptor != nil
        }
    }

    /// Stops watching: the thread ends and closes its descriptors.
    package func stop() {
        let descriptor = state.withLockedValue { state in
            defer { state.stopDescriptor = nil }
            return state.stopDescriptor
        }
        #if canImport(Glibc)
            // The thread sees the pipe's read end hang up and exits.
            if let descriptor { close(descriptor) }
        #endif
    }

    /// Sets up the watch and starts the thread; returns the pipe's write end, or `nil`.
    private static func startThread(directory: String, fileName: String, onChange: @escaping @Sendable () -> Void) -> Int32? {
        #if canImport(Glibc)
            let watch = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
            guard watch >= 0 else { return nil }
            var pipeEnds: [Int32] = [-1, -1]
            let directoryWatch = inotify_add_watch(watch, directory, FileChangeEvents.directoryMask)
            guard directoryWatch >= 0, pipe(&pipeEnds) == 0 else {
                close(watch)
                return nil
            }
            for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            let stopRead = pipeEnds[0]
            let file = FileWatch(descriptor: watch, path: directory + "/" + fileName, name: fileName, directoryWatch: directoryWatch)
            // Before returning, so that a write after start() is reported.
            let fileWatch = file.watchFile()
            let thread = Thread {
                Thread.current.name = "file-change-watcher"
                watchLoop(file, fileWatch: fileWatch, stop: stopRead, onChange: onChange)
                close(watch)
                close(stopRead)
            }
            thread.stackSize = 256 << 10
            thread.start()
            return pipeEnds[1]
        #else
            return nil
        #endif
    }

    #if canImport(Glibc)
        /// The inotify descriptor of a watcher and what it watches.
        private struct FileWatch {
            var descriptor: Int32
            var path: String
            var name: String
            var directoryWatch: Int32

            /// Sets up the file's own watch: its descriptor, or `nil` while the file does not
            /// exist (its creation is reported by the directory's watch).
            func watchFile() -> Int32? {
                let fileWatch = inotify_add_watch(descriptor, path, FileChangeEvents.fileMask)
                return fileWatch >= 0 ? fileWatch : nil
            }
        }

        /// Blocks in `poll(2)` on the inotify descriptor and the stop pipe until the pipe's
        /// write end closes or the directory's watch ends.
        private static func watchLoop(_ file: FileWatch, fileWatch: Int32?, stop: Int32, onChange: @Sendable () -> Void) {
            let watch = file.descriptor
            var fileWatch = fileWatch
            let pause = useconds_t(coalescingPause.components.attoseconds / 1_000_000_000_000)
            var descriptors = [pollfd(fd: watch, events: Int16(POLLIN), revents: 0), pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let ready = poll(&descriptors, 2, -1)
                if ready < 0 {
                    if errno == EINTR { continue }
                    return
                }
                if descriptors[1].revents != 0 { return }
                guard descriptors[0].revents & Int16(POLLIN) != 0 else { continue }
                let count = buffer.withUnsafeMutableBytes { read(watch, $0.baseAddress, $0.count) }
                guard count > 0 else {
                    if count < 0, errno == EAGAIN || errno == EINTR { continue }
                    return
                }
                switch FileChangeEvents.decision(
                    of: buffer[0..<count], for: file.name, directoryWatch: file.directoryWatch, fileWatch: fileWatch)
                {
                case .unchanged: continue
                case .changed: break
                case .replaced: fileWatch = file.watchFile()
                case .watchEnded: return
                }
                onChange()
                usleep(pause)
            }
        }
    #endif
}
