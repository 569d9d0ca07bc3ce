//! Redaction of secrets in URLs before they reach a log or an error.

use url::Url;

/// Query parameters whose name contains one of these are secret.
const SECRET_PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "api_key",
    "api-key",
    "signature",
];
/// Query parameters with exactly one of these names are secret.
const SECRET_NAMES: &[&str] = &["key", "code", "sig", "pwd", "auth"];

/// The URL as text with its user info and every query value whose name
/// looks secret (`token`, `api_key`, `client_secret`, …) replaced by `***`.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    if !u.username().is_empty() {
        let _ = u.set_username("***");
    }
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret = SECRET_PARTS.iter().any(|w| lower.contains(w)) || SECRET_NAMES.contains(&lower.as_str());
                (k.into_owned(), if secret { "***".to_owned() } else { v.into_owned() })
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_query_and_userinfo_are_redacted() {
        let u = Url::parse("https://bob:pw@127.0.0.1/api?limit=5&api_key=abc&access_token=xyz").unwrap();
        assert_eq!(
            redact_url(&u),
            "https://***:***@127.0.0.1/api?limit=5&api_key=***&access_token=***"
        );
        let u = Url::parse("http://127.0.0.1/v2/Users?filter=userName+eq+%22a%22").unwrap();
        assert_eq!(redact_url(&u), "http://127.0.0.1/v2/Users?filter=userName+eq+%22a%22");
    }
}
