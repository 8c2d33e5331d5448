import Foundation

/// Hides what a URL may carry as a credential before it is logged or listed: the userinfo
/// (`user:password@`) and every query value (`?token=...`, `?key=...`, signed-URL signatures).
/// Scheme, host, port, path and query keys stay, so the URL still says where it points.
public enum URLRedaction {
    public static let mask = "***"

    public static func redact(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return mask }
        if c.user != nil || c.password != nil {
            c.user = mask
            c.password = nil
        }
        if let items = c.queryItems, !items.isEmpty {
            c.queryItems = items.map { URLQueryItem(name: $0.name, value: $0.value == nil ? nil : mask) }
        }
        if c.fragment != nil { c.fragment = mask }
        guard var out = c.string else { return mask }
        // `${secret:NAME}` references stay readable (URLComponents percent-encodes the braces).
        for name in Set(SecretReference.names(in: url)) {
            out = out.replacingOccurrences(of: "$%7Bsecret:\(name)%7D", with: "${secret:\(name)}")
        }
        return out
    }
}
