//! A small etcd v3 client over the JSON gRPC gateway (what Patroni's etcd3 DCS speaks): base64
//! keys and values, int64 fields as strings, the `/v3` / `/v3beta` / `/v3alpha` prefix chosen from
//! `/version`, several endpoints with failover on connection errors and timeouts, a per-request
//! timeout, user/password authentication with the token re-requested when etcd says it expired,
//! TLS with a CA file and an optional client certificate and key.
//!
//! Plain Rust over reqwest's blocking client; it never touches PostgreSQL. Only worker processes
//! use it (reqwest's blocking client runs a thread: create it with signals blocked).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// `http(s)://host:port`, tried in order; the one that answered last is tried first.
    pub endpoints: Vec<String>,
    pub timeout: Duration,
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM files.
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// No endpoint could be reached (each one's reason).
    Unreachable(String),
    /// etcd answered with an error (gRPC code and message).
    Etcd { code: i64, message: String },
    /// Wrong user or password, or auth needed and none configured.
    Auth(String),
    /// A configuration problem (unreadable CA, bad URL).
    Config(String),
    /// An answer that does not look like etcd's.
    Protocol(String),
    /// The member key belongs to someone else (another instance under the same name).
    Conflict(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unreachable(m) => write!(f, "etcd unreachable: {m}"),
            Error::Etcd { code, message } => write!(f, "etcd error (code {code}): {message}"),
            Error::Auth(m) => write!(f, "etcd authentication: {m}"),
            Error::Config(m) => write!(f, "etcd client configuration: {m}"),
            Error::Protocol(m) => write!(f, "unexpected answer from etcd: {m}"),
            Error::Conflict(m) => write!(f, "etcd key conflict: {m}"),
        }
    }
}

/// Into pgops' error: the SQLSTATE says whose problem it is (etcd's reachability, pgops'
/// configuration, or an answer pgops did not expect).
impl From<Error> for crate::error::Error {
    fn from(e: Error) -> crate::error::Error {
        use crate::error::Code;
        let code = match &e {
            Error::Unreachable(_) | Error::Etcd { .. } | Error::Auth(_) | Error::Conflict(_) => Code::ConnectionFailure,
            Error::Config(_) => Code::ConfigFileError,
            Error::Protocol(_) => Code::Internal,
        };
        crate::error::Error::new(code, e.to_string())
    }
}

/// gRPC status codes etcd uses here.
const UNAUTHENTICATED: i64 = 16;
const NOT_FOUND: i64 = 5;

pub struct Client {
    cfg: Config,
    http: reqwest::blocking::Client,
    /// Index of the endpoint to try first.
    current: usize,
    /// `/v3`, `/v3beta` or `/v3alpha`, once known.
    api: Option<String>,
    token: Option<String>,
    /// The server said authentication is not enabled: do not ask for a token before each call.
    auth_disabled: bool,
}

/// The key range covering every key that starts with `prefix` (etcd's `range_end`).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

/// The API prefix for an etcd server version, as Patroni chooses it.
pub fn api_prefix(version: &str) -> String {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(3), parts.next().unwrap_or(4));
    match (major, minor) {
        (3, 0..=2) => "/v3alpha",
        (3, 3) => "/v3beta",
        _ => "/v3",
    }
    .to_string()
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(v: &Value) -> Result<Vec<u8>, Error> {
    B64.decode(v.as_str().unwrap_or_default())
        .map_err(|e| Error::Protocol(format!("bad base64: {e}")))
}

/// A key-value pair read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub lease: i64,
    pub mod_revision: i64,
    /// How many times the key was written since it was created.
    pub version: i64,
}

impl Client {
    pub fn new(cfg: Config) -> Result<Client, Error> {
        if cfg.endpoints.is_empty() {
            return Err(Error::Config("no endpoints".into()));
        }
        for e in &cfg.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "endpoint \"{e}\" must start with http:// or https://"
                )));
            }
        }
        let mut b = reqwest::blocking::Client::builder()
            // Never follow a redirect: it would resend the Authorization token (and, for the
            // authenticate call, the password) to wherever the answer points.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .tls_built_in_root_certs(false)
            .pool_max_idle_per_host(1);
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|e| Error::Config(format!("cannot read CA file {ca}: {e}")))?;
            for cert in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Config(format!("CA file {ca}: {e}")))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        match (&cfg.cert_file, &cfg.key_file) {
            (Some(c), Some(k)) => {
                let mut pem = std::fs::read(c).map_err(|e| Error::Config(format!("cannot read {c}: {e}")))?;
                pem.extend(std::fs::read(k).map_err(|e| Error::Config(format!("cannot read {k}: {e}")))?);
                let id = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| Error::Config(format!("client certificate {c} / key {k}: {e}")))?;
                b = b.identity(id);
            }
            (None, None) => {}
            _ => {
                return Err(Error::Config(
                    "a client certificate needs both a cert and a key file".into(),
                ));
            }
        }
        let http = b.build().map_err(|e| Error::Config(e.to_string()))?;
        Ok(Client {
            cfg,
            http,
            current: 0,
            api: None,
            token: None,
            auth_disabled: false,
        })
    }

    /// A new password (rotated in its file): the next call authenticates with it.
    pub fn set_password(&mut self, password: Option<String>) {
        self.cfg.password = password;
        self.token = None;
        self.auth_disabled = false;
    }

    /// The endpoint that answered last.
    pub fn endpoint(&self) -> &str {
        &self.cfg.endpoints[self.current]
    }

    /// Sends one request to the first endpoint that answers, starting with the current one.
    fn send(&mut self, path: &str, body: Option<&Value>) -> Result<(u16, Value), Error> {
        let n = self.cfg.endpoints.len();
        let mut reasons = vec![];
        for i in 0..n {
            let idx = (self.current + i) % n;
            let url = format!("{}{path}", self.cfg.endpoints[idx].trim_end_matches('/'));
            let mut req = match body {
                Some(b) => self.http.post(&url).json(b),
                None => self.http.get(&url),
            };
            if let Some(t) = &self.token {
                req = req.header("Authorization", t);
            }
            match req.send() {
                Ok(resp) => {
                    self.current = idx;
                    let status = resp.status().as_u16();
                    let text = read_capped(resp).map_err(|e| Error::Protocol(format!("{url}: {e}")))?;
                    let v: Value = serde_json::from_str(&text).map_err(|_| {
                        Error::Protocol(format!(
                            "{url}: HTTP {status}: {}",
                            text.chars().take(200).collect::<String>()
                        ))
                    })?;
                    return Ok((status, v));
                }
                Err(e) => reasons.push(format!("{}: {}", self.cfg.endpoints[idx], describe(&e))),
            }
        }
        Err(Error::Unreachable(reasons.join("; ")))
    }

    fn api(&mut self) -> Result<String, Error> {
        if let Some(a) = &self.api {
            return Ok(a.clone());
        }
        let (_, v) = self.send("/version", None)?;
        let version = v["etcdserver"]
            .as_str()
            .ok_or_else(|| Error::Protocol(format!("/version: {v}")))?;
        let a = api_prefix(version);
        self.api = Some(a.clone());
        Ok(a)
    }

    /// Asks for a token with the configured user and password.
    pub fn authenticate(&mut self) -> Result<(), Error> {
        let (Some(user), Some(password)) = (self.cfg.username.clone(), self.cfg.password.clone()) else {
            return Err(Error::Auth(
                "etcd requires authentication; set pgops.etcd_username and pgops.etcd_password_file".into(),
            ));
        };
        let api = self.api()?;
        self.token = None;
        let (status, v) = self.send(
            &format!("{api}/auth/authenticate"),
            Some(&json!({ "name": user, "password": password })),
        )?;
        let message = v["message"].as_str().or(v["error"].as_str()).unwrap_or("");
        match v["token"].as_str() {
            Some(t) if status == 200 => {
                self.token = Some(t.to_string());
                Ok(())
            }
            // Credentials configured, auth not (yet) enabled on the server: requests go without a
            // token, as etcdctl does; once auth is enabled the next request re-authenticates.
            _ if message.contains("authentication is not enabled") => {
                self.auth_disabled = true;
                Ok(())
            }
            _ => Err(Error::Auth(format!(
                "user \"{user}\": {}",
                v["message"].as_str().or(v["error"].as_str()).unwrap_or("refused")
            ))),
        }
    }

    /// One API call: authenticates first when a user is configured, and once more when etcd says
    /// the token is no longer valid.
    pub fn call(&mut self, method: &str, body: Value) -> Result<Value, Error> {
        let api = self.api()?;
        if self.token.is_none() && self.cfg.username.is_some() && !self.auth_disabled {
            self.authenticate()?;
        }
        let mut retried = false;
        loop {
            let (status, v) = self.send(&format!("{api}{method}"), Some(&body))?;
            if status == 200 && v.get("error").is_none() {
                return Ok(v);
            }
            let code = int(&v["code"]).unwrap_or(-1);
            let message = v["message"].as_str().or(v["error"].as_str()).unwrap_or("").to_string();
            let token_problem = code == UNAUTHENTICATED
                || message.contains("invalid auth token")
                || (self.cfg.username.is_some() && message.contains("user name is empty"));
            if token_problem && !retried {
                retried = true;
                self.auth_disabled = false;
                self.authenticate()?;
                continue;
            }
            if token_problem || message.contains("user name is empty") {
                return Err(Error::Auth(message));
            }
            return Err(Error::Etcd { code, message });
        }
    }

    pub fn put(&mut self, key: &[u8], value: &[u8], lease: Option<i64>) -> Result<i64, Error> {
        let mut body = json!({ "key": b64(key), "value": b64(value) });
        if let Some(l) = lease {
            body["lease"] = json!(l.to_string());
        }
        let v = self.call("/kv/put", body)?;
        Ok(int(&v["header"]["revision"]).unwrap_or(0))
    }

    /// Writes and returns the revision and what the key held before (etcd's prev_kv).
    pub fn put_prev(&mut self, key: &[u8], value: &[u8], lease: Option<i64>) -> Result<(i64, Option<Kv>), Error> {
        let mut body = json!({ "key": b64(key), "value": b64(value), "prev_kv": true });
        if let Some(l) = lease {
            body["lease"] = json!(l.to_string());
        }
        let v = self.call("/kv/put", body)?;
        let prev = match v.get("prev_kv") {
            Some(p) if p.is_object() => Some(Kv {
                key: unb64(&p["key"])?,
                value: unb64(&p["value"])?,
                lease: int(&p["lease"]).unwrap_or(0),
                mod_revision: int(&p["mod_revision"]).unwrap_or(0),
                version: int(&p["version"]).unwrap_or(0),
            }),
            _ => None,
        };
        Ok((int(&v["header"]["revision"]).unwrap_or(0), prev))
    }

    /// Keys in [key, range_end) — or just `key` when `range_end` is None.
    pub fn range(&mut self, key: &[u8], range_end: Option<&[u8]>, limit: i64) -> Result<Vec<Kv>, Error> {
        let mut body = json!({ "key": b64(key), "limit": limit.to_string() });
        if let Some(end) = range_end {
            body["range_end"] = json!(b64(end));
        }
        let v = self.call("/kv/range", body)?;
        let mut out = vec![];
        for kv in v["kvs"].as_array().cloned().unwrap_or_default() {
            out.push(Kv {
                key: unb64(&kv["key"])?,
                value: unb64(&kv["value"])?,
                lease: int(&kv["lease"]).unwrap_or(0),
                mod_revision: int(&kv["mod_revision"]).unwrap_or(0),
                version: int(&kv["version"]).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Writes `key` only if it is as it was read: last written at `mod_revision` (0: absent).
    /// Ok(Some(revision)) when written, Ok(None) when someone else wrote it meanwhile.
    pub fn put_if_unchanged(&mut self, key: &[u8], value: &[u8], mod_revision: i64) -> Result<Option<i64>, Error> {
        let compare = if mod_revision == 0 {
            json!({ "key": b64(key), "result": "EQUAL", "target": "VERSION", "version": "0" })
        } else {
            json!({ "key": b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": mod_revision.to_string() })
        };
        let v = self.call(
            "/kv/txn",
            json!({ "compare": [compare], "success": [{ "request_put": { "key": b64(key), "value": b64(value) } }] }),
        )?;
        Ok(v["succeeded"].as_bool().unwrap_or(false).then(|| int(&v["header"]["revision"]).unwrap_or(0)))
    }

    pub fn range_prefix(&mut self, prefix: &[u8], limit: i64) -> Result<Vec<Kv>, Error> {
        self.range(prefix, Some(&prefix_end(prefix)), limit)
    }

    pub fn delete(&mut self, key: &[u8], range_end: Option<&[u8]>) -> Result<i64, Error> {
        let mut body = json!({ "key": b64(key) });
        if let Some(end) = range_end {
            body["range_end"] = json!(b64(end));
        }
        let v = self.call("/kv/deleterange", body)?;
        Ok(int(&v["deleted"]).unwrap_or(0))
    }

    /// A new lease of `ttl` seconds: its id and the TTL etcd granted.
    pub fn lease_grant(&mut self, ttl: i64) -> Result<(i64, i64), Error> {
        let v = self.call("/lease/grant", json!({ "TTL": ttl.to_string() }))?;
        match (int(&v["ID"]), int(&v["TTL"])) {
            (Some(id), Some(t)) => Ok((id, t)),
            _ => Err(Error::Protocol(format!("lease/grant: {v}"))),
        }
    }

    /// Refreshes a lease; Ok(None) when it has expired (etcd answers TTL 0 or "not found").
    pub fn lease_keepalive(&mut self, id: i64) -> Result<Option<i64>, Error> {
        match self.call("/lease/keepalive", json!({ "ID": id.to_string() })) {
            Ok(v) => {
                let r = if v.get("result").is_some() { &v["result"] } else { &v };
                Ok(int(&r["TTL"]).filter(|t| *t > 0))
            }
            Err(Error::Etcd { code, message })
                if code == NOT_FOUND || message.contains("requested lease not found") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub fn lease_revoke(&mut self, id: i64) -> Result<(), Error> {
        match self.call("/lease/revoke", json!({ "ID": id.to_string() })) {
            Ok(_) => Ok(()),
            Err(Error::Etcd { code, message })
                if code == NOT_FOUND || message.contains("requested lease not found") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        let mut s = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(inner) = src {
            s = inner.to_string();
            src = inner.source();
        }
        format!("cannot connect ({s})")
    } else {
        e.to_string()
    }
}

/// The most an answer from etcd may hold: what is under pgops' prefix is written by peers, and a
/// peer (or anything answering at an endpoint) must not make a worker buffer without bound.
pub const MAX_RESPONSE_BYTES: u64 = 16 << 20;

/// Reads an answer's body as text, refusing one over [`MAX_RESPONSE_BYTES`].
fn read_capped(resp: reqwest::blocking::Response) -> Result<String, String> {
    use std::io::Read;
    let mut buf = Vec::new();
    resp.take(MAX_RESPONSE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| e.to_string())?;
    if buf.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(format!(
            "the answer is larger than {} MiB; refused",
            MAX_RESPONSE_BYTES >> 20
        ));
    }
    String::from_utf8(buf).map_err(|_| "the answer is not UTF-8 text".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    #[test]
    fn prefixes_and_ranges() {
        assert_eq!(prefix_end(b"/pg/a/"), b"/pg/a0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xff]), b"b".to_vec());
        assert_eq!(prefix_end(&[0xff, 0xff]), vec![0]);
        assert_eq!(api_prefix("3.4.30"), "/v3");
        assert_eq!(api_prefix("3.5.1"), "/v3");
        assert_eq!(api_prefix("3.3.11"), "/v3beta");
        assert_eq!(api_prefix("3.2.0"), "/v3alpha");
    }

    /// A recorded etcd: answers each path with a canned response and logs what it was asked.
    fn recorded(replies: Vec<(&'static str, u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(vec![]));
        let seen = log.clone();
        let replies = Arc::new(Mutex::new(replies));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut s = stream.unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let (mut len, mut auth) = (0usize, String::new());
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h == "\r\n" || h.is_empty() {
                        break;
                    }
                    let lower = h.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if lower.starts_with("authorization:") {
                        auth = h[14..].trim().to_string();
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                seen.lock()
                    .unwrap()
                    .push(format!("{path} {auth} {}", String::from_utf8_lossy(&body)));
                let mut rs = replies.lock().unwrap();
                let pos = rs
                    .iter()
                    .position(|(p, _, _)| *p == path)
                    .expect("an unexpected request");
                let (_, status, text) = rs.remove(pos);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        (url, log)
    }

    /// A server that answers each request with the next raw HTTP response and records the paths.
    fn raw_server(responses: Vec<Vec<u8>>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(vec![]));
        let seen = log.clone();
        std::thread::spawn(move || {
            let mut responses = responses.into_iter();
            for stream in listener.incoming() {
                let mut s = stream.unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                seen.lock()
                    .unwrap()
                    .push(line.split_whitespace().nth(1).unwrap_or("").to_string());
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let Some(resp) = responses.next() else { return };
                let _ = s.write_all(&resp);
            }
        });
        (url, log)
    }

    #[test]
    fn redirects_are_never_followed() {
        let (url, seen) = raw_server(vec![
            b"HTTP/1.1 307 X\r\nlocation: /elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 X\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}".to_vec(),
        ]);
        let mut c = Client::new(cfg(vec![url])).unwrap();
        let e = c.lease_grant(10).unwrap_err().to_string();
        assert!(e.contains("307"), "{e}");
        assert_eq!(
            *seen.lock().unwrap(),
            vec!["/version".to_string()],
            "the redirect was followed"
        );
    }

    #[test]
    fn an_oversized_answer_is_refused() {
        let body = vec![b' '; (MAX_RESPONSE_BYTES + 10) as usize];
        let mut resp = format!(
            "HTTP/1.1 200 X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        resp.extend(body);
        let (url, _) = raw_server(vec![resp]);
        let mut c = Client::new(cfg(vec![url])).unwrap();
        let e = c.lease_grant(10).unwrap_err().to_string();
        assert!(e.contains("larger than 16 MiB"), "{e}");
    }

    fn cfg(endpoints: Vec<String>) -> Config {
        Config {
            endpoints,
            timeout: Duration::from_secs(2),
            ..Config::default()
        }
    }

    #[test]
    fn put_range_lease_against_recorded_answers() {
        let (url, log) = recorded(vec![
            ("/version", 200, r#"{"etcdserver":"3.4.30","etcdcluster":"3.4.0"}"#),
            (
                "/v3/lease/grant",
                200,
                r#"{"header":{"revision":"5"},"ID":"7587878349857372163","TTL":"30"}"#,
            ),
            ("/v3/kv/put", 200, r#"{"header":{"cluster_id":"1","revision":"6"}}"#),
            (
                "/v3/kv/range",
                200,
                r#"{"header":{"revision":"6"},"kvs":[{"key":"L3BnL2EvcGdvcHMvbWVtYmVycy9h","value":"eyJzY2hlbWEiOjF9","lease":"7587878349857372163","mod_revision":"6"}],"count":"1"}"#,
            ),
            (
                "/v3/lease/keepalive",
                200,
                r#"{"result":{"header":{"revision":"6"},"ID":"7587878349857372163","TTL":"30"}}"#,
            ),
        ]);
        let mut c = Client::new(cfg(vec![url])).unwrap();
        let (id, ttl) = c.lease_grant(30).unwrap();
        assert_eq!((id, ttl), (7587878349857372163, 30));
        assert_eq!(
            c.put(b"/pg/a/pgops/members/a", br#"{"schema":1}"#, Some(id)).unwrap(),
            6
        );
        let kvs = c.range_prefix(b"/pg/a/pgops/", 10).unwrap();
        assert_eq!(kvs[0].key, b"/pg/a/pgops/members/a".to_vec());
        assert_eq!(kvs[0].value, br#"{"schema":1}"#.to_vec());
        assert_eq!(kvs[0].lease, id);
        assert_eq!(c.lease_keepalive(id).unwrap(), Some(30));
        let log = log.lock().unwrap();
        assert!(log[2].contains(r#""lease":"7587878349857372163""#), "{}", log[2]);
        assert!(log[2].contains(r#""key":"L3BnL2EvcGdvcHMvbWVtYmVycy9h""#));
        assert!(log[3].contains(r#""range_end":"L3BnL2EvcGdvcHMw""#), "{}", log[3]);
    }

    #[test]
    fn old_servers_get_the_beta_prefix_and_expired_leases_say_so() {
        let (url, _) = recorded(vec![
            ("/version", 200, r#"{"etcdserver":"3.3.11","etcdcluster":"3.3.0"}"#),
            ("/v3beta/lease/keepalive", 200, r#"{"result":{"header":{},"ID":"1"}}"#),
            (
                "/v3beta/lease/revoke",
                404,
                r#"{"error":"etcdserver: requested lease not found","code":5,"message":"etcdserver: requested lease not found"}"#,
            ),
        ]);
        let mut c = Client::new(cfg(vec![url])).unwrap();
        assert_eq!(c.lease_keepalive(1).unwrap(), None);
        assert_eq!(c.lease_revoke(1), Ok(()));
    }

    #[test]
    fn fails_over_to_the_next_endpoint() {
        // Nothing listens on the first one.
        let dead = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let (url, _) = recorded(vec![
            ("/version", 200, r#"{"etcdserver":"3.5.9"}"#),
            ("/v3/kv/put", 200, r#"{"header":{"revision":"2"}}"#),
        ]);
        let mut c = Client::new(cfg(vec![dead.clone(), url.clone()])).unwrap();
        assert_eq!(c.put(b"k", b"v", None).unwrap(), 2);
        assert_eq!(c.endpoint(), url);
        // All down: one error naming each endpoint.
        let mut c = Client::new(cfg(vec![dead.clone(), dead])).unwrap();
        match c.put(b"k", b"v", None) {
            Err(Error::Unreachable(m)) => assert_eq!(m.matches("cannot connect").count(), 2, "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn token_is_renewed_once_when_etcd_says_it_expired() {
        let (url, log) = recorded(vec![
            ("/version", 200, r#"{"etcdserver":"3.4.30"}"#),
            ("/v3/auth/authenticate", 200, r#"{"header":{},"token":"first.1"}"#),
            (
                "/v3/kv/put",
                401,
                r#"{"error":"etcdserver: invalid auth token","code":16,"message":"etcdserver: invalid auth token"}"#,
            ),
            ("/v3/auth/authenticate", 200, r#"{"header":{},"token":"second.2"}"#),
            ("/v3/kv/put", 200, r#"{"header":{"revision":"9"}}"#),
        ]);
        let mut c = Client::new(Config {
            username: Some("pg-meta".into()),
            password: Some("secret".into()),
            ..cfg(vec![url])
        })
        .unwrap();
        assert_eq!(c.put(b"k", b"v", None).unwrap(), 9);
        let log = log.lock().unwrap();
        assert!(log[2].starts_with("/v3/kv/put first.1"), "{}", log[2]);
        assert!(log[4].starts_with("/v3/kv/put second.2"), "{}", log[4]);
    }

    #[test]
    fn credentials_for_a_server_without_auth_are_not_an_error() {
        let (url, log) = recorded(vec![
            ("/version", 200, r#"{"etcdserver":"3.4.30"}"#),
            (
                "/v3/auth/authenticate",
                400,
                r#"{"error":"etcdserver: authentication is not enabled","code":9,"message":"etcdserver: authentication is not enabled"}"#,
            ),
            ("/v3/kv/put", 200, r#"{"header":{"revision":"3"}}"#),
            ("/v3/kv/put", 200, r#"{"header":{"revision":"4"}}"#),
        ]);
        let mut c = Client::new(Config {
            username: Some("pg-meta".into()),
            password: Some("secret".into()),
            ..cfg(vec![url])
        })
        .unwrap();
        assert_eq!(c.put(b"k", b"v", None).unwrap(), 3);
        assert_eq!(
            c.put(b"k", b"v", None).unwrap(),
            4,
            "no new authentication attempt per call"
        );
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 4);
        assert!(log[2].starts_with("/v3/kv/put  "), "sent without a token: {}", log[2]);
    }

    #[test]
    fn a_wrong_password_is_a_clear_error() {
        let (url, _) = recorded(vec![
            ("/version", 200, r#"{"etcdserver":"3.4.30"}"#),
            (
                "/v3/auth/authenticate",
                400,
                r#"{"error":"etcdserver: authentication failed, invalid user ID or password","code":3,"message":"etcdserver: authentication failed, invalid user ID or password"}"#,
            ),
        ]);
        let mut c = Client::new(Config {
            username: Some("u".into()),
            password: Some("bad".into()),
            ..cfg(vec![url])
        })
        .unwrap();
        assert_eq!(
            c.put(b"k", b"v", None),
            Err(Error::Auth(
                "user \"u\": etcdserver: authentication failed, invalid user ID or password".into()
            ))
        );
    }

    #[test]
    fn configuration_errors() {
        assert!(matches!(Client::new(cfg(vec![])), Err(Error::Config(_))));
        assert!(
            matches!(Client::new(cfg(vec!["127.0.0.1:2379".into()])), Err(Error::Config(m)) if m.contains("http://"))
        );
        let bad_ca = Config {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..cfg(vec!["https://127.0.0.1:1".into()])
        };
        assert!(matches!(Client::new(bad_ca), Err(Error::Config(m)) if m.contains("cannot read CA file")));
    }

    #[test]
    fn against_a_real_etcd() {
        let e = crate::etcd::testing::RealEtcd::start(1);
        let mut c = Client::new(cfg(vec![e.urls[0].clone()])).unwrap();
        let (lease, ttl) = c.lease_grant(5).unwrap();
        assert_eq!(ttl, 5);
        c.put(b"/pg/t/pgops/members/a", b"{\"schema\":1}", Some(lease)).unwrap();
        c.put(b"/pg/t/pgops/members/b", b"b", None).unwrap();
        c.put(b"/pg/t/leader", b"patroni's", None).unwrap();
        let kvs = c.range_prefix(b"/pg/t/pgops/", 100).unwrap();
        assert_eq!(
            kvs.iter().map(|k| k.key.clone()).collect::<Vec<_>>(),
            vec![b"/pg/t/pgops/members/a".to_vec(), b"/pg/t/pgops/members/b".to_vec()]
        );
        assert_eq!(kvs[0].lease, lease);
        assert_eq!(c.lease_keepalive(lease).unwrap(), Some(5));
        c.lease_revoke(lease).unwrap();
        // Revoking the lease removes the key bound to it, and only that one.
        assert!(c.range(b"/pg/t/pgops/members/a", None, 1).unwrap().is_empty());
        assert_eq!(
            c.range(b"/pg/t/leader", None, 1).unwrap()[0].value,
            b"patroni's".to_vec()
        );
        assert_eq!(
            c.lease_keepalive(lease).unwrap(),
            None,
            "a revoked lease reads as expired"
        );
        assert_eq!(
            c.delete(b"/pg/t/pgops/", Some(&prefix_end(b"/pg/t/pgops/"))).unwrap(),
            1
        );
        // A lease that is not kept alive expires by itself.
        let (short, _) = c.lease_grant(1).unwrap();
        c.put(b"/pg/t/pgops/members/c", b"c", Some(short)).unwrap();
        std::thread::sleep(Duration::from_millis(3500));
        assert!(c.range(b"/pg/t/pgops/members/c", None, 1).unwrap().is_empty());
    }

    #[test]
    fn real_etcd_over_tls_with_a_client_certificate() {
        let dir = std::env::temp_dir().join(format!("pgops-tls-test-{}", std::process::id()));
        let tls = crate::etcd::testing::Tls::make(&dir);
        let e = crate::etcd::testing::RealEtcd::start_tls(&tls);
        let good = Config {
            ca_file: Some(tls.ca.clone()),
            cert_file: Some(tls.client_cert.clone()),
            key_file: Some(tls.client_key.clone()),
            ..cfg(e.urls.clone())
        };
        let mut c = Client::new(good.clone()).unwrap();
        let mut written = Err(Error::Protocol("not tried".into()));
        for _ in 0..100 {
            written = c.put(b"/pg/t/pgops/members/tls", b"v", None);
            if written.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(written.is_ok(), "{written:?}");
        assert_eq!(
            c.range(b"/pg/t/pgops/members/tls", None, 1).unwrap()[0].value,
            b"v".to_vec()
        );
        // Without the client certificate etcd refuses the handshake; without the CA we refuse etcd.
        let no_cert = Config {
            cert_file: None,
            key_file: None,
            ..good.clone()
        };
        assert!(matches!(
            Client::new(no_cert).unwrap().put(b"k", b"v", None),
            Err(Error::Unreachable(_))
        ));
        let no_ca = Config {
            ca_file: None,
            ..good.clone()
        };
        match Client::new(no_ca).unwrap().put(b"k", b"v", None) {
            Err(Error::Unreachable(m)) => assert!(m.to_lowercase().contains("certificate"), "{m}"),
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn real_etcd_with_auth_and_a_prefix_role() {
        let e = crate::etcd::testing::RealEtcd::start(1);
        let mut admin = Client::new(cfg(vec![e.urls[0].clone()])).unwrap();
        // Pigsty's layout: root, and a per-cluster user limited to /pg/<cluster>/.
        for (m, body) in [
            ("/auth/role/add", json!({"name": "root"})),
            ("/auth/user/add", json!({"name": "root", "password": "rootpw"})),
            ("/auth/user/grant", json!({"user": "root", "role": "root"})),
            ("/auth/role/add", json!({"name": "pg-t"})),
            (
                "/auth/role/grant",
                json!({"name": "pg-t", "perm": {"permType": "READWRITE", "key": b64(b"/pg/t/"), "range_end": b64(&prefix_end(b"/pg/t/"))}}),
            ),
            ("/auth/user/add", json!({"name": "pg-t", "password": "pw"})),
            ("/auth/user/grant", json!({"user": "pg-t", "role": "pg-t"})),
            ("/auth/enable", json!({})),
        ] {
            admin.call(m, body).unwrap_or_else(|e| panic!("{m}: {e}"));
        }
        let user = |password: &str| Config {
            username: Some("pg-t".into()),
            password: Some(password.into()),
            ..cfg(vec![e.urls[0].clone()])
        };
        let mut c = Client::new(user("pw")).unwrap();
        let (lease, _) = c.lease_grant(10).unwrap();
        c.put(b"/pg/t/pgops/members/a", b"a", Some(lease)).unwrap();
        assert_eq!(c.range_prefix(b"/pg/t/pgops/", 10).unwrap().len(), 1);
        match c.put(b"/elsewhere", b"x", None) {
            Err(Error::Etcd { message, .. }) => assert!(message.contains("permission denied"), "{message}"),
            other => panic!("{other:?}"),
        }
        let mut wrong = Client::new(user("nope")).unwrap();
        match wrong.put(b"/pg/t/pgops/members/a", b"a", None) {
            Err(Error::Auth(m)) => assert!(m.contains("pg-t") && m.contains("authentication failed"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Without credentials: a clear error, not a silent failure.
        let mut anonymous = Client::new(cfg(vec![e.urls[0].clone()])).unwrap();
        assert!(anonymous.put(b"/pg/t/pgops/x", b"x", None).is_err());
        c.lease_revoke(lease).unwrap();
    }
}
