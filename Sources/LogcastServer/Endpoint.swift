import HummingbirdCore

/// Every endpoint logcast serves, and who may use it.
///
/// Access belongs to the route, not to a spelling of its path: the router
/// picks the handler first, and ``AccessMiddleware`` then looks at the
/// *route* it picked (`context.endpointPath`), so `/sse/`, `//sse` or an
/// absolute-form `http://host/sse` get exactly the refusal `/sse` gets.
/// Every route is protected unless it is listed in ``publicRoutes``; a route
/// added later is protected without anyone having to remember it. Requests
/// that match no route go to the viewer's static files, which are public.
///
/// WebSocket upgrades are decided before the router sees the request (see
/// ``UpgradeRefusalHandler``); ``resolve(target:)`` finds their endpoint
/// with the router's own rule for constant paths (the path of Hummingbird's
/// `URI`, split on `/` with empty components dropped, compared exactly), and
/// a unit test checks that the two agree on every generated spelling.
public enum Endpoint: String, CaseIterable, Sendable {
    case stream = "/ws"
    case events = "/sse"
    case lines = "/api/v1/lines"
    case sources = "/api/v1/sources"
    case metrics = "/metrics"
    case health = "/healthz"

    /// Routes that need no token. Everything else does.
    public static let publicRoutes: Set<String> = [Endpoint.health.rawValue]

    /// Whether the route at `routePath` (as the router names it) needs the token.
    public static func isProtected(routePath: String) -> Bool {
        !publicRoutes.contains(routePath)
    }

    /// The endpoint a request target (path and query, or absolute form) reaches.
    public static func resolve(target: String) -> Endpoint? {
        let components = URI(target).path.split(separator: "/", omittingEmptySubsequences: true)
        return Endpoint(rawValue: "/" + components.joined(separator: "/"))
    }
}
