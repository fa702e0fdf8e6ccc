import Foundation

/// A demo failure with a message for the terminal.
struct DemoError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
