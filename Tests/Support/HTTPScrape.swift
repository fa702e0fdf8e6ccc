import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Reads a service's health and metrics endpoint on loopback.
public struct HTTPScrape: Sendable {
    /// The endpoint's port on 127.0.0.1.
    public let port: Int

    public init(port: Int) {
        self.port = port
    }

    /// A free TCP port on 127.0.0.1, as the kernel hands one out.
    public static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(socket, pointer, length) == 0 && getsockname(socket, pointer, &length) == 0
            }
        }
        guard bound else { throw POSIXError(.EADDRINUSE) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `GET path`: the status and body, or `nil` while nothing answers.
    public func get(_ path: String) async -> (status: Int, body: String)? {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.timeoutInterval = 5
        guard let (data, response) = try? await URLSession.shared.data(for: request),
            let http = response as? HTTPURLResponse
        else { return nil }
        return (http.statusCode, String(decoding: data, as: UTF8.self))
    }

    /// The value of the sample `name{labels}` on `/metrics`, or `nil` when it is absent.
    public func metric(_ name: String, _ labels: String) async -> Double? {
        guard let (status, body) = await get("/metrics"), status == 200 else { return nil }
        let prefix = "\(name){\(labels)} "
        return body.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }

    /// The status of `/health/ready`, or `nil` while nothing answers.
    public func readiness() async -> (status: Int, body: String)? {
        await get("/health/ready")
    }
}
