import HTTPTypes
import Hummingbird
import LogcastHub
import LogcastProtocol
import NIOCore

/// A request the server will not serve: its status, extra headers, and a
/// JSON body `{"error":"...","hint":"..."}` saying what was wrong and what
/// would be right. The one refusal type of the server.
///
/// A route throws it (it is an `HTTPResponseError`, so Hummingbird answers
/// with ``response``); the upgrade path, which runs before the router,
/// writes the same response through ``UpgradeRefusalHandler``.
public struct Refusal: HTTPResponseError, Sendable, Equatable {
    public var status: HTTPResponse.Status
    /// The `error` and `hint` of the body.
    public var error: FilterError
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ error: FilterError, headers: HTTPFields = [:]) {
        self.status = status
        self.error = error
        self.headers = headers
    }

    public init(_ status: HTTPResponse.Status, _ message: String, hint: String, headers: HTTPFields = [:]) {
        self.init(status, FilterError(message, hint: hint), headers: headers)
    }

    /// The JSON body.
    public var body: [UInt8] { error.json }

    /// The whole response: status, `Content-Type`, `Cache-Control: no-store`, the headers and the body.
    public var response: Response {
        jsonResponse(status, body, extra: headers)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response
    }
}

/// A JSON response that no cache keeps.
func jsonResponse(_ status: HTTPResponse.Status, _ body: [UInt8], extra: HTTPFields = [:]) -> Response {
    var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
    headers.append(contentsOf: extra)
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
}
