//! Raw HTTP requests and responses, for every face's client.

use serde_json::Value;
use std::time::Duration;

pub const JSON: &str = "application/json";
pub const XML: &str = "application/xml";

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
}

pub async fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Resp {
    request_with_body(method, url, headers, None).await
}

/// `request` with a body (sent as it is; set its Content-Type in `headers`).
pub async fn request_with_body(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
    let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
    let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.insert_header((*k, *v));
    }
    let sent = match body {
        Some(body) => req.send_body(body.to_owned()).await,
        None => req.send().await,
    };
    let mut res = sent.unwrap_or_else(|e| panic!("{url}: {e}"));
    let body = res.body().limit(16 * 1024 * 1024).await.expect("body");
    Resp {
        status: res.status().as_u16(),
        headers: res.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}
