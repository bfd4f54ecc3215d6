//! `Authorization: Bearer <token>`, the credential of the token faces (Daytona's, Vercel's).

use actix_web::http::header::HeaderMap;

/// The bearer token a request carries, if any (the scheme in any case; blank is none).
pub fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("Authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}
