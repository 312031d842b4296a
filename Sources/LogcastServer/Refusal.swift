import CoreMetrics
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
    /// Why, in a word, for the `reason` of `logcast_refusals_total`: by
    /// default the status's (``reason(of:)``), or one of several refusals
    /// that share a status (`503`).
    public var reason: String

    public init(_ status: HTTPResponse.Status, _ error: FilterError, headers: HTTPFields = [:], reason: String? = nil) {
        self.status = status
        self.error = error
        self.headers = headers
        self.reason = reason ?? Self.reason(of: status)
    }

    public init(_ status: HTTPResponse.Status, _ message: String, hint: String, headers: HTTPFields = [:], reason: String? = nil) {
        self.init(status, FilterError(message, hint: hint), headers: headers, reason: reason)
    }

    /// The reason of a refusal with this status, when it does not say.
    public static func reason(of status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "bad-request"
        case 401: "unauthorized"
        case 403: "forbidden-origin"
        case 404: "not-found"
        case 405: "method-not-allowed"
        case 414: "target-too-long"
        case 421: "unknown-host"
        case 426: "upgrade-required"
        case 429: "too-many-from-address"
        case 503: "unavailable"
        default: String(status.code)
        }
    }

    /// The JSON body.
    public var body: [UInt8] { error.json }

    /// The whole response: status, `Content-Type`, `Cache-Control: no-store`, the headers and the body.
    public var response: Response {
        jsonResponse(status, body, extra: headers)
    }

    /// ``response``, counted: every path that answers with a refusal (routes,
    /// middleware) takes it from here, or counts it with ``count()`` (the
    /// upgrade path, which writes its own bytes).
    public func answer() -> Response {
        count()
        return response
    }

    /// Adds one to `logcast_refusals_total{reason}`.
    public func count() {
        CoreMetrics.Counter(label: MetricsCatalog.refusals, dimensions: [("reason", reason)]).increment()
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        answer()
    }
}

/// A JSON response that no cache keeps.
func jsonResponse(_ status: HTTPResponse.Status, _ body: [UInt8], extra: HTTPFields = [:]) -> Response {
    var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
    headers.append(contentsOf: extra)
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
}
