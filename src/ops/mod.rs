//! The operator page `serve` serves at `/ops`: one HTML page from the binary (no build step)
//! that refreshes itself from `/ops/api/state` every two seconds, and replays a queue's dead
//! letters through the CLI's own code (`POST /ops/api/dlq/{queue}/replay`). Its data is every
//! user's, so both calls need an operator's token (`token --operator`): a user's token is a
//! 403, none a 401. Every refusal is `intake::answer`'s, as the API gives it (no internal text).
//! The night over time comes from `GET /ops/api/nights` (the last 14 nights'
//! summaries, the rows `report --since` prints) and `GET /ops/api/nights/{date}` (one night's
//! points, summary and charts, see `charts.rs`). The page takes the token from its URL fragment (`/ops#token=…`, which no
//! request carries) and keeps it in the tab's session storage.

use crate::embedded::Embedded;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use intake::answer::ApiError;
use serde_json::json;
use shared::app::intake::IntakeError;
use shared::topology::Queue;
use std::sync::Arc;

pub mod charts;

/// The page, compiled into the binary.
const PAGE: &str = include_str!("page.html");

#[derive(Clone)]
struct Ops {
    app: Arc<Embedded>,
    key: Arc<intake::LocalKey>,
}

/// The operator page's routes over `app`, its callers checked with `key`.
pub fn router(app: Arc<Embedded>, key: Arc<intake::LocalKey>) -> Router {
    Router::new()
        .route("/ops", get(|| async { Html(PAGE) }))
        .route("/ops/api/state", get(state))
        .route("/ops/api/dlq/{queue}/replay", post(replay))
        .route("/ops/api/nights", get(nights))
        .route("/ops/api/nights/{night}", get(night))
        .with_state(Ops { app, key })
}

/// The answer refusing a request without an operator's bearer token (`intake::answer`, as the
/// API answers); None lets it through.
fn refusal(ops: &Ops, headers: &HeaderMap) -> Option<Response> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let checked = match token {
        Some(token) => ops.key.verify_operator(token).map(|_| ()),
        None => Err(IntakeError::Unauthorized(
            "an operator's bearer token is required (`batch-orchestrator token --operator`)".into(),
        )),
    };
    checked.err().map(|e| ApiError::from(e).into_response())
}

/// `GET /ops/api/state`: the night (`shared::app::ops`) and the dead letters per queue.
async fn state(State(ops): State<Ops>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&ops, &headers) {
        return r;
    }
    let view = match shared::app::ops::snapshot(&ops.app.deps).await {
        Ok(v) => v,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut dead = serde_json::Map::new();
    for queue in Queue::ALL {
        let n = ops.app.bus.dead_letters(Some(queue)).map_or(0, |d| d.len());
        dead.insert(queue.name().to_owned(), json!(n));
    }
    let mut body = serde_json::to_value(&view).unwrap_or_default();
    body["deadLetters"] = serde_json::Value::Object(dead);
    Json(body).into_response()
}

/// `POST /ops/api/dlq/{queue}/replay`: moves up to 100 of the queue's dead letters back, as
/// `batch-orchestrator dlq replay --queue` does.
async fn replay(State(ops): State<Ops>, headers: HeaderMap, Path(queue): Path<String>) -> Response {
    if let Some(r) = refusal(&ops, &headers) {
        return r;
    }
    let Some(queue) = Queue::ALL.into_iter().find(|q| q.name() == queue) else {
        return ApiError::NotFound(format!("no queue {queue}")).into_response();
    };
    match ops.app.bus.replay_dead_letters(queue, 100) {
        Ok(moved) => Json(json!({"queue": queue.name(), "replayed": moved})).into_response(),
        Err(e) => ApiError::from(IntakeError::Unavailable(e)).into_response(),
    }
}

/// `GET /ops/api/nights`: the last 14 nights' summaries, newest first, each with its row as
/// `report --since` prints it.
async fn nights(State(ops): State<Ops>, headers: HeaderMap) -> Response {
    if let Some(r) = refusal(&ops, &headers) {
        return r;
    }
    match shared::app::nights::last_nights(&ops.app.deps).await {
        Ok(rows) => {
            let nights: Vec<serde_json::Value> = rows
                .iter()
                .map(|s| json!({"night": s.night, "cells": crate::report::night_cells(s), "summary": s}))
                .collect();
            Json(json!({"columns": crate::report::NIGHT_COLUMNS, "nights": nights})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /ops/api/nights/{date}`: one night's summary (once it ended), points and charts.
async fn night(State(ops): State<Ops>, headers: HeaderMap, Path(night): Path<String>) -> Response {
    if let Some(r) = refusal(&ops, &headers) {
        return r;
    }
    let Ok(day) = chrono::NaiveDate::parse_from_str(&night, "%Y-%m-%d") else {
        let why = format!("must be a date as YYYY-MM-DD, got {night:?}");
        return ApiError::from(IntakeError::invalid("night", why)).into_response();
    };
    match shared::app::nights::view(&ops.app.deps, day).await {
        Ok(view) => {
            let charts = charts::charts(day, &view.points);
            let mut body = serde_json::to_value(&view).unwrap_or_default();
            body["charts"] = serde_json::to_value(charts).unwrap_or_default();
            Json(body).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}
