import Foundation

/// Runs `body` with a new, empty directory under the system's temporary directory and
/// removes the directory afterwards, whether `body` succeeds or throws.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("eventsourcery-sqlite-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(directory)
}

extension URL {
    /// The path of the database file `name` in this directory.
    func database(_ name: String = "events.sqlite") -> String {
        appendingPathComponent(name).path
    }
}
