//! The real [`CurveTransport`]: HTTP/1.1 on hyper, one connection per request (a round asks
//! each daemon once or a few times, and a fresh connection never sends to a dead peer).
//!
//! No `User-Agent` is sent, so brpc's builtins answer in plain text
//! (B:src/brpc/builtin/common.cpp l.34-46), and no `Accept-Encoding`, so nothing comes gzipped
//! (B:src/brpc/policy/http_rpc_protocol.cpp l.831-848).

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::{CallError, CurveTransport, HttpAnswer};

/// HTTP to Curve's daemons with a timeout on each whole request (connect, send, read).
#[derive(Clone, Debug)]
pub struct HttpTransport {
    pub timeout: Duration,
    /// Answers longer than this are refused (a ChunkServer's `/raft_stat` is ~800 bytes per
    /// copyset).
    pub max_body_bytes: usize,
}

impl Default for HttpTransport {
    fn default() -> Self {
        HttpTransport {
            timeout: Duration::from_secs(2),
            max_body_bytes: 32 << 20,
        }
    }
}

impl HttpTransport {
    pub fn new(timeout: Duration) -> Self {
        HttpTransport {
            timeout,
            ..Default::default()
        }
    }

    async fn request(
        &self,
        method: Method,
        addr: &str,
        path: &str,
        json: Option<String>,
    ) -> Result<HttpAnswer, CallError> {
        let endpoint = format!("{addr}{path}");
        let unreachable = |reason: String| CallError::Unreachable {
            endpoint: endpoint.clone(),
            reason,
        };
        let exchange = async {
            let stream = (TcpStream::connect(addr).await)
                .map_err(|e| unreachable(format!("connect: {e}")))?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| unreachable(format!("HTTP handshake: {e}")))?;
            // The connection is driven beside the exchange and dropped with it (on timeout
            // too); once it ends, the exchange sees the error or has its whole answer.
            let conn = async move {
                let _ = conn.await;
                std::future::pending::<()>().await
            };
            let send = async {
                let mut request = Request::builder()
                    .method(method)
                    .uri(path)
                    .header(HOST, addr);
                if json.is_some() {
                    request = request.header(CONTENT_TYPE, "application/json");
                }
                let request = (request.body(Full::new(Bytes::from(json.unwrap_or_default()))))
                    .map_err(|e| CallError::bad(&endpoint, format!("request: {e}")))?;
                let response = (sender.send_request(request).await)
                    .map_err(|e| unreachable(format!("no answer: {e}")))?;
                let status = response.status().as_u16();
                let body = Limited::new(response.into_body(), self.max_body_bytes)
                    .collect()
                    .await
                    .map_err(|e| {
                        if e.is::<http_body_util::LengthLimitError>() {
                            CallError::bad(
                                &endpoint,
                                format!("an answer over {} bytes", self.max_body_bytes),
                            )
                        } else {
                            unreachable(format!("answer cut short: {e}"))
                        }
                    })?
                    .to_bytes();
                let body = String::from_utf8(body.to_vec())
                    .map_err(|_| CallError::bad(&endpoint, "an answer that is not UTF-8 text"))?;
                Ok(HttpAnswer { status, body })
            };
            tokio::select! {
                answer = send => answer,
                () = conn => unreachable!("the connection future never ends"),
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err(unreachable(format!(
                "no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

impl CurveTransport for HttpTransport {
    async fn get(&self, addr: &str, path: &str) -> Result<HttpAnswer, CallError> {
        self.request(Method::GET, addr, path, None).await
    }

    async fn post_json(
        &self,
        addr: &str,
        path: &str,
        body: String,
    ) -> Result<HttpAnswer, CallError> {
        self.request(Method::POST, addr, path, Some(body)).await
    }
}
