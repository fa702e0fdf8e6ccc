import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Random 64-bit words from the operating system's generator, read 4 KiB at a time.
///
/// `SystemRandomNumberGenerator` makes one system call per word on Linux (`getrandom`,
/// about 0.4 µs); every new event id needs one word, so ids take them from this pool
/// instead, filled from `/dev/urandom` with one system call per 512 ids (from
/// `SystemRandomNumberGenerator` where the device cannot be read). The words are as random as the generator's; a
/// process that forks without `exec` shares the unread rest of the pool with its child.
enum RandomBits {
    private struct Pool {
        var words = [UInt64](repeating: 0, count: 512)
        var next = 512

        /// `/dev/urandom`, opened on first use; -1 when it cannot be opened.
        private var device: Int32 = -2

        mutating func refill() {
            if device == -2 { device = open("/dev/urandom", O_RDONLY | O_CLOEXEC) }
            let complete =
                device >= 0
                && words.withUnsafeMutableBytes { buffer in
                    var filled = 0
                    while filled < buffer.count {
                        let count = read(device, buffer.baseAddress! + filled, buffer.count - filled)
                        if count < 0 && errno == EINTR { continue }
                        guard count > 0 else { return false }
                        filled += count
                    }
                    return true
                }
            if !complete {
                // No device to read (a sandbox, a chroot): one system call per word.
                var generator = SystemRandomNumberGenerator()
                for index in words.indices { words[index] = generator.next() }
            }
            next = 0
        }
    }

    private static let pool = NIOLockedValueBox(Pool())

    /// The next random word.
    static func next() -> UInt64 {
        pool.withLockedValue { pool in
            if pool.next == pool.words.count { pool.refill() }
            defer { pool.next += 1 }
            return pool.words[pool.next]
        }
    }
}
