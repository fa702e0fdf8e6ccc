import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#endif

/// Calls a closure soon after a file is written by any process: on Linux with `inotify` on
/// the file's directory, read on a thread of its own (the read blocks, so it never runs on
/// Swift's cooperative pool). Elsewhere ``start()`` returns `false` and callers poll.
///
/// The directory is watched rather than the file, so the watch survives the file being
/// created, replaced or deleted. Nothing starts in `init`; ``stop()`` (or releasing the
/// watcher) ends the thread. What a batch of events means is decided by ``FileChangeEvents``.
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
            guard inotify_add_watch(watch, directory, FileChangeEvents.watchedMask) >= 0, pipe(&pipeEnds) == 0 else {
                close(watch)
                return nil
            }
            for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            let stopRead = pipeEnds[0]
            let thread = Thread {
                Thread.current.name = "file-change-watcher"
                watchLoop(watch: watch, stop: stopRead, fileName: fileName, onChange: onChange)
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
        /// Blocks in `poll(2)` on the inotify descriptor and the stop pipe until the pipe's
        /// write end closes or the watch ends.
        private static func watchLoop(watch: Int32, stop: Int32, fileName: String, onChange: @Sendable () -> Void) {
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
                switch FileChangeEvents.decision(of: buffer[0..<count], for: fileName) {
                case .unchanged: continue
                case .changed: onChange()
                case .watchEnded: return
                }
            }
        }
    #endif
}
