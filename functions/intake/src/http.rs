//! The HTTP Lambda's door. The runtime hands it API Gateway's REST (v1) or HTTP API (v2) event
//! already typed (`lambda_http`'s `LambdaRequest`); `lambda_http`'s own adapter, the code
//! `lambda_http::run` runs, turns it into an `http::Request`, the router answers, and the
//! adapter turns the answer into the proxy response. Three small things stand around it:
//! - [`defect`]: `lambda_http` panics on a body marked base64 that does not decode and on a host
//!   or path that is not a URL. API Gateway sends neither, but a hostile direct invoke could;
//!   such an event is answered 400 naming the field instead of failing the invocation.
//! - [`stage_free`]: `lambda_http` puts a REST API's stage in front of the path; the routes are
//!   stage-free, so the path is the one the client sent (`RawHttpPath`).
//! - [`buffered`]: the router's answer (a small JSON document) in memory, so the invocation's
//!   future can move between threads (the shared Lambda main needs it `Send`).

use crate::answer::ApiError;
use axum::http::header::HOST;
use axum::http::HeaderValue;
use axum::response::IntoResponse as _;
use base64::Engine as _;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, Context, LambdaEvent, Request, RequestExt as _};
use shared::app::intake::IntakeError;
use std::convert::Infallible;
use tower::ServiceExt as _;

/// What a URI path may not hold as is (a REST API's `path` arrives decoded).
const PATH: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The proxy response of `app` (the [`router`], built once per process) to one API Gateway
/// event (`lambda_http`'s response type).
pub async fn answer(app: &axum::Router, mut request: LambdaRequest) -> impl serde::Serialize {
    if let Err(e) = defect(&request) {
        // The event's own defect would panic the conversion: the refusal goes through the same
        // adapter with the defective parts taken out, so it has its door's shape.
        let mut response = Some(buffered(ApiError::Intake(e).into_response()).await);
        sanitize(&mut request);
        let refuse = tower::service_fn(move |_: Request| {
            std::future::ready(Ok::<_, Infallible>(response.take().unwrap_or_default()))
        });
        return call(Adapter::from(refuse), request).await;
    }
    let service = app
        .clone()
        .map_request(stage_free)
        .and_then(|response| async { Ok(buffered(response).await) });
    call(Adapter::from(service), request).await
}

async fn call<S>(adapter: S, request: LambdaRequest) -> S::Response
where
    S: tower::Service<LambdaEvent<LambdaRequest>, Error = Infallible>,
{
    match adapter
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
    {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// The router's answer with its body in memory (small JSON documents), as `lambda_http`'s
/// body: axum's streaming body cannot be shared between threads, and the Lambda's future must
/// be `Send`. `lambda_http` still picks text or base64 by the content type.
async fn buffered(response: axum::response::Response) -> lambda_http::Response<Body> {
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => lambda_http::Response::from_parts(parts, Body::from(bytes.to_vec())),
        // Reading an answer already in memory cannot fail; if it did, the client gets a 503
        // to retry, never an empty 200.
        Err(e) => {
            let (status, retry_after, body) =
                crate::answer::unavailable(format!("the answer could not be read: {e}"));
            let mut response = lambda_http::Response::new(Body::from(body.to_string()));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            headers.insert("retry-after", HeaderValue::from_static(retry_after));
            response
        }
    }
}

/// The event without what [`defect`] found: no body, no host, the root path.
fn sanitize(request: &mut LambdaRequest) {
    match request {
        LambdaRequest::ApiGatewayV1(r) => {
            (r.body, r.is_base64_encoded, r.path) = (None, false, Some("/".into()));
            (r.request_context.domain_name, r.request_context.stage) = (None, None);
            r.headers.remove(HOST);
        }
        LambdaRequest::ApiGatewayV2(r) => {
            (r.body, r.is_base64_encoded, r.raw_path) = (None, false, Some("/".into()));
            (r.request_context.domain_name, r.request_context.stage) = (None, None);
            r.headers.remove(HOST);
        }
        _ => {}
    }
}

/// The request with the path the client sent, without the stage `lambda_http` put in front.
fn stage_free(mut request: Request) -> Request {
    let raw = request.raw_http_path().to_owned();
    if raw.is_empty() {
        return request;
    }
    let path = if raw.starts_with('/') {
        raw
    } else {
        format!("/{raw}")
    };
    let path = percent_encoding::utf8_percent_encode(&path, PATH).to_string();
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    if let Ok(uri) = format!("{path}{query}").parse() {
        *request.uri_mut() = uri;
    }
    request
}

/// What `lambda_http`'s conversion would panic on, as the field it names.
fn defect(request: &LambdaRequest) -> Result<(), IntakeError> {
    let (headers, domain, stage, path, body, base64) = match request {
        LambdaRequest::ApiGatewayV1(r) => (
            &r.headers,
            &r.request_context.domain_name,
            &r.request_context.stage,
            &r.path,
            &r.body,
            r.is_base64_encoded,
        ),
        LambdaRequest::ApiGatewayV2(r) => (
            &r.headers,
            &r.request_context.domain_name,
            &r.request_context.stage,
            &r.raw_path,
            &r.body,
            r.is_base64_encoded,
        ),
        _ => return Ok(()),
    };
    if let (Some(body), true) = (body, base64) {
        if let Err(e) = base64::engine::general_purpose::STANDARD.decode(body) {
            let rule = format!("is marked base64 but does not decode ({e})");
            return Err(IntakeError::invalid("body", rule));
        }
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or(domain.as_deref());
    let Some(host) = host else { return Ok(()) };
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|s| s.to_str().ok())
        .unwrap_or("https");
    let stage = stage
        .as_deref()
        .filter(|s| *s != "$default")
        .map(|s| format!("/{s}"))
        .unwrap_or_default();
    let url = format!(
        "{scheme}://{host}{stage}{}",
        path.as_deref().unwrap_or_default()
    );
    match url::Url::parse(&url).map(|u| u.as_str().parse::<axum::http::Uri>()) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(malformed(format!("{url:?} is not a URI ({e})"))),
        Err(e) => Err(malformed(format!("its host or path is not a URL ({e})"))),
    }
}

fn malformed(rule: String) -> IntakeError {
    IntakeError::invalid("event", format!("malformed API Gateway event: {rule}"))
}
