import Dispatch
import Foundation

/// Measures how long the disk takes to flush one small write: the floor under every durable
/// commit (SQLite with `synchronous = FULL` calls `fdatasync` on its write-ahead log once
/// per transaction), so latency figures can be read beside the disk they ran on.
enum DiskFlushProbe {
    /// Appends 4 KiB to a scratch file in `directory` and calls `fdatasync` after each write,
    /// `count` times, on a thread of its own (never the cooperative pool); returns each
    /// flush's duration. The file is removed afterwards.
    static func measure(in directory: URL, count: Int = 200) async throws -> [Duration] {
        let path = directory.appendingPathComponent("flush-probe-\(UUID().uuidString)").path
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try flushes(path: path, count: count) })
            }
        }
    }

    private static func flushes(path: String, count: Int) throws -> [Duration] {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer {
            close(descriptor)
            unlink(path)
        }
        let block = [UInt8](repeating: 0x78, count: 4096)
        let clock = ContinuousClock()
        var durations: [Duration] = []
        durations.reserveCapacity(count)
        for _ in 0..<count {
            guard block.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == block.count else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            let start = clock.now
            guard fdatasync(descriptor) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            durations.append(clock.now - start)
        }
        return durations
    }
}
