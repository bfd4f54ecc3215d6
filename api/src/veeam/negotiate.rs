//! Content negotiation for the Veeam face: XML unless `Accept` prefers JSON.
//!
//! No `Accept`, `*/*` and `application/xml` give XML. JSON when `application/json` has the
//! highest q-value; on a tie JSON wins only if it is named explicitly (Veeam's rule: JSON when
//! `Accept` contains `application/json`). `None` when neither may be sent (→ 406).

use actix_web::http::header::{ACCEPT, HeaderMap};

tokio::task_local! {
    /// The format negotiated for the request being served (set by `middleware`).
    pub static FORMAT: Format;
}

/// The current request's format; XML outside a request.
pub fn current() -> Format {
    FORMAT.try_with(|f| *f).unwrap_or(Format::Xml)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Xml => "xml",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "application/xml; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }
    }
}

pub fn negotiate(headers: &HeaderMap) -> Option<Format> {
    let accept: Vec<&str> = headers.get_all(ACCEPT).filter_map(|v| v.to_str().ok()).collect();
    if accept.is_empty() || accept.iter().all(|v| v.trim().is_empty()) {
        return Some(Format::Xml);
    }
    let ranges: Vec<(String, f32)> = accept.iter().flat_map(|v| v.split(',')).filter_map(parse_range).collect();
    // (q, specificity) of the most specific range matching the type.
    let score = |kind: &str, subtype: &str| -> (f32, u8) {
        ranges
            .iter()
            .filter_map(|(range, q)| {
                let (t, s) = range.split_once('/')?;
                let specificity = match (t, s) {
                    _ if t == kind && s == subtype => 2,
                    _ if t == kind && s == "*" => 1,
                    ("*", "*") => 0,
                    _ => return None,
                };
                Some((*q, specificity))
            })
            .max_by_key(|(_, specificity)| *specificity)
            .unwrap_or((0.0, 0))
    };
    let (xml_q, _) = {
        let (a, sa) = score("application", "xml");
        let (b, sb) = score("text", "xml");
        if b > a { (b, sb) } else { (a, sa) }
    };
    let (json_q, json_specificity) = score("application", "json");
    match (xml_q > 0.0, json_q > 0.0) {
        (false, false) => None,
        (true, false) => Some(Format::Xml),
        (false, true) => Some(Format::Json),
        (true, true) if json_q > xml_q || (json_q == xml_q && json_specificity == 2) => Some(Format::Json),
        (true, true) => Some(Format::Xml),
    }
}

fn parse_range(item: &str) -> Option<(String, f32)> {
    let mut parts = item.split(';');
    let range = parts.next()?.trim().to_ascii_lowercase();
    if range.is_empty() {
        return None;
    }
    let q = parts
        .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
        .find_map(|q| q.trim().parse::<f32>().ok())
        .unwrap_or(1.0);
    Some((range, q.clamp(0.0, 1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn pick(accept: Option<&str>) -> Option<Format> {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(ACCEPT, HeaderValue::from_str(accept).expect("header"));
        }
        negotiate(&headers)
    }

    #[test]
    fn xml_is_the_default_and_json_must_be_asked_for() {
        assert_eq!(pick(None), Some(Format::Xml));
        assert_eq!(pick(Some("*/*")), Some(Format::Xml));
        assert_eq!(pick(Some("application/xml")), Some(Format::Xml));
        assert_eq!(pick(Some("application/json")), Some(Format::Json));
        assert_eq!(pick(Some("application/json, */*")), Some(Format::Json));
        assert_eq!(pick(Some("application/xml, application/json")), Some(Format::Json));
        assert_eq!(pick(Some("text/html,application/json;q=0.9,*/*;q=0.8")), Some(Format::Json));
    }

    #[test]
    fn q_values_are_honoured() {
        assert_eq!(pick(Some("application/json;q=0.5, application/xml")), Some(Format::Xml));
        assert_eq!(pick(Some("application/json, application/xml;q=0")), Some(Format::Json));
        assert_eq!(pick(Some("application/*;q=0.2, application/json;q=0")), Some(Format::Xml));
    }

    proptest::proptest! {
        #[test]
        fn any_accept_header_negotiates_without_panicking(accept in "[ -~]{0,400}") {
            let value = format!("{accept}, application/xml;q=0.001");
            if let Ok(value) = HeaderValue::from_str(&value) {
                let mut headers = HeaderMap::new();
                headers.insert(ACCEPT, value);
                // Whatever came before, a positive q for XML is always answerable.
                proptest::prop_assert!(negotiate(&headers).is_some());
            }
            if let Ok(value) = HeaderValue::from_str(&accept) {
                let mut headers = HeaderMap::new();
                headers.insert(ACCEPT, value);
                let _ = negotiate(&headers);
            }
        }
    }

    #[test]
    fn an_accept_that_allows_neither_is_refused() {
        assert_eq!(pick(Some("text/html")), None);
        assert_eq!(pick(Some("application/json;q=0, application/xml;q=0")), None);
        assert_eq!(pick(Some("image/png, text/*;q=0")), None);
    }
}
