public import Foundation

/// The checkout the tests run from: scripts, the shipped configuration, built executables.
public enum TestRepository {
    /// The repository root: the nearest folder above this file that holds `Package.swift`.
    public static let root: URL = {
        var folder = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        while folder.path != "/" {
            if FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
                return folder
            }
            folder.deleteLastPathComponent()
        }
        fatalError("no Package.swift above \(#filePath)")
    }()
}
