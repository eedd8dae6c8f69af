//! The requests of an upload to an S3-compatible bucket: path-style, each signed with SigV4,
//! over HTTP or HTTPS (rustls, the system's roots). A thin shell around [`super::sigv4`] and
//! the answers [`super`] reads.

use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use k8s_openapi::jiff::{Timestamp, tz::TimeZone};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::sigv4::{self, Credentials, EMPTY_SHA256, Signable};

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Reads of a file are this long: small enough to hold, large enough to stream fast.
const CHUNK: usize = 256 << 10;
/// A request without a file to send (list, delete, create and complete an upload) that takes
/// longer than this is taken for lost.
const SMALL_REQUEST: Duration = Duration::from_secs(120);

/// One bucket of an S3 API endpoint.
pub struct Bucket {
    scheme: String,
    /// `host[:port]` as sent in `Host` and signed.
    authority: String,
    pub bucket: String,
    pub region: String,
    credentials: Credentials,
    client: Transport,
}

/// HTTP, or HTTPS with the system's roots: an `http://` endpoint needs no CA bundle (the
/// roots are read only for HTTPS, and reading none is an error).
enum Transport {
    Http(Client<HttpConnector, Body>),
    Https(Client<HttpsConnector<HttpConnector>, Body>),
}

impl Transport {
    fn request(&self, request: Request<Body>) -> ResponseFuture {
        match self {
            Transport::Http(client) => client.request(request),
            Transport::Https(client) => client.request(request),
        }
    }
}

impl Bucket {
    /// `endpoint` is `http(s)://host[:port]`.
    pub fn new(
        endpoint: &str,
        bucket: &str,
        region: &str,
        credentials: Credentials,
    ) -> Result<Self, String> {
        let uri: Uri = (endpoint.parse())
            .map_err(|e| format!("the endpoint {endpoint:?} is not a URL: {e}"))?;
        let scheme = (uri.scheme_str())
            .filter(|s| *s == "http" || *s == "https")
            .ok_or_else(|| format!("the endpoint {endpoint:?} is not http:// or https://"))?
            .to_string();
        let authority = (uri.authority())
            .ok_or_else(|| format!("the endpoint {endpoint:?} names no host"))?
            .to_string();
        let builder = Client::builder(TokioExecutor::new());
        let client = match scheme.as_str() {
            "https" => {
                let https = (hyper_rustls::HttpsConnectorBuilder::new().with_native_roots())
                    .map_err(|e| format!("cannot read the system's TLS roots: {e}"))?
                    .https_only()
                    .enable_http1()
                    .build();
                Transport::Https(builder.build(https))
            }
            _ => Transport::Http(builder.build(HttpConnector::new())),
        };
        Ok(Bucket {
            scheme,
            authority,
            bucket: bucket.to_string(),
            region: region.to_string(),
            credentials,
            client,
        })
    }

    /// The path-style URL of `key` (for people: the status and the result).
    pub fn url(&self, key: &str) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.path(key))
    }

    fn path(&self, key: &str) -> String {
        match key {
            "" => format!("/{}", self.bucket),
            key => format!("/{}/{key}", self.bucket),
        }
    }

    /// Sends one signed request; its answer's body when S3 took it, else S3's error.
    async fn send(
        &self,
        method: Method,
        key: &str,
        query: &[(String, String)],
        body: Body,
        length: u64,
        payload_hash: &str,
    ) -> Result<(http::HeaderMap, Bytes), String> {
        let amz_date = Timestamp::now()
            .to_zoned(TimeZone::UTC)
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let path = self.path(key);
        let headers = vec![
            ("host".to_string(), self.authority.clone()),
            ("x-amz-content-sha256".to_string(), payload_hash.to_string()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ];
        let signable = Signable {
            method: method.as_str(),
            path: &path,
            query,
            headers: &headers,
            payload_hash,
        };
        let authorization =
            sigv4::authorization(&signable, &self.credentials, &self.region, "s3", &amz_date);
        let query = sigv4::canonical_query(query);
        let uri = format!(
            "{}://{}{}{}{query}",
            self.scheme,
            self.authority,
            sigv4::uri_encode(&path, true),
            if query.is_empty() { "" } else { "?" }
        );
        let mut request = Request::builder().method(method.clone()).uri(&uri);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let request = (request.header("authorization", authorization))
            .header("content-length", length)
            .body(body)
            .map_err(|e| format!("{method} {uri}: {e}"))?;
        let exchange = async {
            let response = (self.client.request(request).await)
                .map_err(|e| format!("{method} {uri}: no answer: {}", chain(&e)))?;
            let status = response.status();
            let (parts, body) = response.into_parts();
            let body = (body.collect().await)
                .map_err(|e| format!("{method} {uri}: the answer broke off: {e}"))?
                .to_bytes();
            if status.is_success() {
                Ok((parts.headers, body))
            } else {
                let said = super::error_text(status.as_u16(), &String::from_utf8_lossy(&body));
                Err(format!("{method} {uri}: S3 answered {said}"))
            }
        };
        if length > 0 && method == Method::PUT {
            exchange.await
        } else {
            (tokio::time::timeout(SMALL_REQUEST, exchange).await)
                .map_err(|_| format!("{method} {uri}: no answer in {SMALL_REQUEST:?}"))?
        }
    }

    async fn send_small(
        &self,
        method: Method,
        key: &str,
        query: &[(String, String)],
        body: Bytes,
    ) -> Result<(http::HeaderMap, Bytes), String> {
        let hash = match body.is_empty() {
            true => EMPTY_SHA256.to_string(),
            false => sigv4::sha256_hex(&body),
        };
        let length = body.len() as u64;
        let body = (Full::new(body))
            .map_err(|never: std::convert::Infallible| -> std::io::Error { match never {} })
            .boxed_unsync();
        self.send(method, key, query, body, length, &hash).await
    }

    /// PUT of `length` bytes of `file` from `offset`, streamed (never held whole): first read
    /// once for its SHA-256, which is signed, so the server refuses bytes that changed.
    async fn put_range(
        &self,
        key: &str,
        query: &[(String, String)],
        file: &Path,
        offset: u64,
        length: u64,
    ) -> Result<http::HeaderMap, String> {
        let hash = (hash_range(file, offset, length).await)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let body = (file_body(file, offset, length).await)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let (headers, _) = self
            .send(Method::PUT, key, query, body, length, &hash)
            .await?;
        Ok(headers)
    }

    /// Uploads `file` as `key`: one PUT up to `single_put_max` bytes, else a multipart upload
    /// of `part_size` parts (aborted when a part fails, so no parts are left to pay for).
    pub async fn upload(
        &self,
        key: &str,
        file: &Path,
        single_put_max: u64,
        part_size: u64,
    ) -> Result<(), String> {
        let size = (tokio::fs::metadata(file).await)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?
            .len();
        if size <= single_put_max {
            return self.put_range(key, &[], file, 0, size).await.map(|_| ());
        }
        let parts = super::parts(size, part_size);
        if parts.len() as u64 > super::MAX_PARTS {
            return Err(format!(
                "{size} bytes would be {} parts of {part_size}: S3 takes at most {}",
                parts.len(),
                super::MAX_PARTS
            ));
        }
        let flag = |name: &str, value: &str| (name.to_string(), value.to_string());
        let (_, answer) = self
            .send_small(Method::POST, key, &[flag("uploads", "")], Bytes::new())
            .await?;
        let upload_id = super::parse_upload_id(&String::from_utf8_lossy(&answer))?;
        let mut etags = Vec::new();
        for (i, (offset, length)) in parts.iter().enumerate() {
            let query = [
                flag("partNumber", &(i + 1).to_string()),
                flag("uploadId", &upload_id),
            ];
            let sent = self.put_range(key, &query, file, *offset, *length).await;
            let etag = sent.and_then(|headers| {
                (headers.get("etag").and_then(|v| v.to_str().ok()))
                    .map(str::to_string)
                    .ok_or_else(|| format!("part {} of {key}: the answer has no ETag", i + 1))
            });
            match etag {
                Ok(etag) => etags.push(etag),
                Err(why) => {
                    let aborted = self.abort(key, &upload_id).await;
                    return Err(match aborted {
                        Ok(()) => why,
                        Err(abort) => format!("{why}; aborting the upload failed too: {abort}"),
                    });
                }
            }
        }
        let body = Bytes::from(super::complete_body(&etags));
        let completed = self
            .send_small(Method::POST, key, &[flag("uploadId", &upload_id)], body)
            .await;
        // CompleteMultipartUpload may answer 200 with an <Error> in its body.
        let completed = completed.and_then(|(_, body)| {
            let body = String::from_utf8_lossy(&body);
            match body.contains("<Error>") {
                true => Err(format!(
                    "completing the upload of {key}: S3 answered {}",
                    super::error_text(200, &body)
                )),
                false => Ok(()),
            }
        });
        if let Err(why) = completed {
            let _ = self.abort(key, &upload_id).await;
            return Err(why);
        }
        Ok(())
    }

    async fn abort(&self, key: &str, upload_id: &str) -> Result<(), String> {
        let query = [("uploadId".to_string(), upload_id.to_string())];
        (self
            .send_small(Method::DELETE, key, &query, Bytes::new())
            .await)
            .map(|_| ())
    }

    /// Every key under `prefix` (ListObjectsV2, page by page).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), prefix.to_string()),
            ];
            if let Some(token) = &token {
                query.push(("continuation-token".to_string(), token.clone()));
            }
            let (_, body) = self
                .send_small(Method::GET, "", &query, Bytes::new())
                .await?;
            let page = super::parse_list(&String::from_utf8_lossy(&body))
                .map_err(|e| format!("listing {}: {e}", self.url(prefix)))?;
            keys.extend(page.keys);
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(keys),
            }
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), String> {
        (self
            .send_small(Method::DELETE, key, &[], Bytes::new())
            .await)
            .map(|_| ())
    }

    /// Uploads a small object held in memory (the `.json` marker).
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<(), String> {
        (self.send_small(Method::PUT, key, &[], bytes).await).map(|_| ())
    }

    /// GET of a whole object (tests and restores of small objects).
    pub async fn get(&self, key: &str) -> Result<Bytes, String> {
        (self.send_small(Method::GET, key, &[], Bytes::new()).await).map(|(_, body)| body)
    }
}

/// An error and its sources, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

async fn open_at(file: &Path, offset: u64) -> std::io::Result<tokio::fs::File> {
    let mut opened = tokio::fs::File::open(file).await?;
    opened.seek(SeekFrom::Start(offset)).await?;
    Ok(opened)
}

/// Hex SHA-256 of `length` bytes of `file` from `offset`, read in chunks.
async fn hash_range(file: &Path, offset: u64, length: u64) -> std::io::Result<String> {
    let mut reader = open_at(file, offset).await?.take(length);
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0u8; CHUNK];
    let mut read = 0;
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        context.update(&buffer[..n]);
        read += n as u64;
    }
    if read != length {
        return Err(std::io::Error::other(format!(
            "{read} bytes where {length} were expected: the file shrank"
        )));
    }
    Ok(sigv4::hex(context.finish().as_ref()))
}

/// `length` bytes of `file` from `offset` as a body read chunk by chunk while it is sent.
async fn file_body(file: &Path, offset: u64, length: u64) -> std::io::Result<Body> {
    let reader = open_at(file, offset).await?.take(length);
    let chunks = futures::stream::try_unfold(reader, |mut reader| async move {
        let mut buffer = vec![0u8; CHUNK];
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.truncate(n);
        Ok::<_, std::io::Error>(Some((Frame::data(Bytes::from(buffer)), reader)))
    });
    Ok(StreamBody::new(chunks).boxed_unsync())
}
