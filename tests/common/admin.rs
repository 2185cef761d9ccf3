//! The admin API of a running weir, as an operator's script calls it: JSON in and out, with
//! or without the bearer token.

use super::http::client;
use serde_json::Value;

/// The admin API at one port, writing with one token.
pub struct AdminApi {
    /// `http://127.0.0.1:PORT`, for requests the methods below cannot make.
    pub base: String,
    token: String,
    /// The client the methods use.
    pub http: reqwest::blocking::Client,
}

impl AdminApi {
    /// The API on 127.0.0.1:`port`, whose writes send `token`.
    pub fn new(port: u16, token: &str) -> Self {
        Self {
            base: format!("http://127.0.0.1:{port}"),
            token: token.to_string(),
            http: client(),
        }
    }

    /// Sends `method path` with `token` (if any) and a raw `body`: the status and the
    /// answer's text.
    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    }

    /// As [`AdminApi::send`], the answer read as JSON (null for none).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let (status, text) = self.send(method, path, token, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// An authorized write with a JSON body: the status and the JSON answer.
    pub fn write(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, Some(&self.token), &body.to_string())
    }

    /// `GET path` without a token (reads need none on loopback), after asserting a 200.
    pub fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None, "");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}
