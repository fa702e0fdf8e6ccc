import Hummingbird

extension Response {
    /// The answer to a `HEAD` request: the same status and headers, `Content-Length`
    /// included, without the body.
    func withoutBody() -> Response {
        var response = self
        let contentLength = headers[.contentLength]
        response.body = ResponseBody()
        response.headers[.contentLength] = contentLength
        return response
    }
}
