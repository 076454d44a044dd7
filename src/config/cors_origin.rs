//! The allowed browser origins of `/graphql` (`TALLY_CORS_ORIGINS`), read and normalised here so
//! that the configuration holds only origins a browser can send; `http::cors` answers them.

/// Reads one `TALLY_CORS_ORIGINS` entry: `scheme://host[:port]`, as a browser sends it in
/// `Origin` (http or https, no path, no trailing slash). Returned as the browser writes it
/// (lower-case, default port left out); an empty entry (an empty variable, a trailing comma) is
/// returned empty and skipped.
pub fn parse_cors_origin(entry: &str) -> Result<String, String> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Ok(String::new());
    }
    let refuse = |why: &str| {
        Err(format!(
            "`{entry}` is not an origin ({why}); write scheme://host[:port], e.g. \
             https://dashboard.example.com"
        ))
    };
    if entry == "*" {
        return refuse("a wildcard would let any site call the API; list the origins");
    }
    let url = match url::Url::parse(entry) {
        Ok(url) => url,
        Err(err) => return refuse(&err.to_string()),
    };
    if url.scheme() != "http" && url.scheme() != "https" {
        return refuse("the scheme must be http or https");
    }
    // The parser reads `https://host` and `https://host/` alike; an origin has neither path nor
    // trailing slash.
    if url.path() != "/"
        || entry.ends_with('/')
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return refuse("an origin has no path, not even a trailing slash");
    }
    if url.port() == Some(0) {
        return refuse("the port must be a number from 1 to 65535");
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::parse_cors_origin;

    #[test]
    fn accepts_origins_as_browsers_send_them() {
        for origin in [
            "https://dash.example.com",
            "http://localhost:3000",
            "http://127.0.0.1:8081",
            "http://[::1]:8080",
            "HTTPS://Dash.Example.com",
        ] {
            let parsed = parse_cors_origin(origin).expect(origin);
            assert_eq!(parsed, origin.to_ascii_lowercase());
        }
        assert_eq!(parse_cors_origin(" ").as_deref(), Ok(""));
    }

    #[test]
    fn refuses_what_is_not_an_origin() {
        for bad in [
            "*",
            "example.com",
            "ftp://example.com",
            "https://example.com/",
            "https://example.com/app",
            "https://exa mple.com",
            "https://example.com:0",
            "https://example.com:99999",
            "https://:8080",
            "http://::1:8080",
        ] {
            assert!(parse_cors_origin(bad).is_err(), "{bad} was accepted");
        }
    }
}
