/// The version the server reports in `hello` and `/healthz`.
public enum LogcastVersion {
    public static let string = "0.1.0"
    public static let server = "logcast/\(string)"
}
