//! The operator page in a real browser: `serve`'s `/ops`, loaded by Debian's headless
//! Chromium while a batch's Bedrock job is stuck in Scheduled, renders the job, its user and
//! status, the slots taken and the intents by status; a user's token is refused its data (403).
//! After two nights, the second with a stopped job redriven on-demand, it charts the night
//! (asserted on the SVG's series), lists both nights as `report --since` prints them, and fits a
//! 1280 px window.
//! Chromium missing: skipped, unless `BO_REQUIRE_BROWSER` is set (scripts/test.sh installs it
//! and sets it), which makes a missing browser a failure. The tests also leave screenshots in
//! `target/ops-page.png` and `target/ops-night.png` (the ones in docs/operations.md).

use crate::common::*;
use batch_orchestrator::embedded::{Embedded, EmbeddedOptions};
use shared::adapters::embedded::bedrock_emulator::fault_plan::BedrockFault;
use std::process::Command;
use std::sync::Arc;

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser() -> Option<&'static str> {
    if std::path::Path::new(CHROMIUM).exists() {
        return Some(CHROMIUM);
    }
    assert!(
        std::env::var_os("BO_REQUIRE_BROWSER").is_none(),
        "BO_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)"
    );
    eprintln!("skipped: no {CHROMIUM}");
    None
}

/// Chromium, headless, as this machine allows it (no sandbox as root, no background network).
fn chromium(bin: &str, args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile");
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            &profile_arg,
        ])
        .args(args)
        .output()
        .expect("chromium runs")
}

#[tokio::test]
async fn when_an_operator_opens_the_page_should_see_the_stuck_job_and_a_user_should_not() {
    let Some(bin) = browser() else { return };
    let dir = tempfile::tempdir().expect("dir");
    let mut opts = EmbeddedOptions::new(dir.path());
    opts.settings.quotas.min_records_per_job = 1;
    opts.settings.pool_below_records = 0;
    opts.emulator.quotas = opts.settings.quotas.clone();
    opts.emulator.faults = vec![BedrockFault::StuckScheduled];
    let app = Arc::new(Embedded::open(opts).expect("embedded"));
    for (i, key) in SAMPLE_KEYS.iter().enumerate() {
        app.upload(key, batch_orchestrator::samples::receipt_png(i + 1))
            .await
            .expect("upload");
    }
    let answer = app.intake(direct("night-1", &SAMPLE_KEYS)).await;
    assert_eq!(status(&answer), 202, "{answer}");
    app.run_until_idle(1_000, |_| {}).await.expect("idle");
    let job_id = body(&answer)["jobId"].as_str().expect("jobId").to_owned();

    let key = Arc::new(intake::LocalKey::load_or_create(dir.path()).expect("key"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = batch_orchestrator::ops::router(app.clone(), key.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let operator = key
        .sign_operator(&shared::domain::ids::UserId::parse("ops").expect("id"), 600)
        .expect("token");
    let user = key
        .sign(
            &shared::domain::ids::UserId::parse(SAMPLE_USER).expect("id"),
            600,
        )
        .expect("token");

    // The data is the operator's alone.
    let http = crate::common::http();
    let state = format!("{url}/ops/api/state");
    let code = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(code(http.get(&state).send().await.expect("GET")), 401);
    let as_user = http
        .get(&state)
        .bearer_auth(&user)
        .send()
        .await
        .expect("GET");
    assert_eq!(code(as_user), 403);

    // What the browser renders, after the page's script fetched and drew the state.
    let page = format!("{url}/ops#token={operator}");
    let bin = bin.to_owned();
    let dom = tokio::task::spawn_blocking(move || chromium(&bin, &["--dump-dom", &page]))
        .await
        .expect("browser");
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();
    let table = |id: &str| {
        let start = dom
            .find(&format!("id=\"{id}-table\""))
            .unwrap_or_else(|| panic!("no {id} table in {dom}"));
        let end = dom[start..]
            .find("</table>")
            .map_or(dom.len(), |e| start + e);
        dom[start..end].to_owned()
    };
    let jobs = table("jobs");
    assert!(jobs.contains(&job_id), "the job id: {jobs}");
    assert!(
        jobs.contains(SAMPLE_USER) && jobs.contains("Scheduled"),
        "{jobs}"
    );
    assert!(jobs.contains("arn:aws:bedrock:"), "the Bedrock job: {jobs}");
    let statuses = table("statuses");
    assert!(
        statuses.contains("SUBMITTED") && statuses.contains(">1<"),
        "{statuses}"
    );
    assert!(table("models").contains("1 / 10"), "a slot taken");
    assert!(table("dlq").contains("status-watcher"));

    // The picture docs/operations.md shows.
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ops-page.png");
    let shot_arg = format!("--screenshot={}", shot.display());
    let page = format!("{url}/ops#token={operator}");
    let bin = CHROMIUM.to_owned();
    tokio::task::spawn_blocking(move || {
        chromium(
            &bin,
            &[
                &shot_arg,
                "--window-size=1280,900",
                "--hide-scrollbars",
                &page,
            ],
        )
    })
    .await
    .expect("screenshot");
    assert!(shot.exists(), "a screenshot at {}", shot.display());
}

/// The ops routes over `app` on a free port, and an operator's token for them.
async fn serve_ops(app: Arc<Embedded>, key_dir: &std::path::Path) -> (String, String) {
    let key = Arc::new(intake::LocalKey::load_or_create(key_dir).expect("key"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let router = batch_orchestrator::ops::router(app, key.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let operator = key
        .sign_operator(&shared::domain::ids::UserId::parse("ops").expect("id"), 600)
        .expect("token");
    (url, operator)
}

/// The points of an SVG element's `points` attribute.
fn points_of(element: &str) -> Vec<(f64, f64)> {
    let Some(start) = element.find("points=\"") else {
        return Vec::new();
    };
    let rest = &element[start + 8..];
    rest[..rest.find('"').unwrap_or(rest.len())]
        .split_whitespace()
        .filter_map(|xy| {
            let (x, y) = xy.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect()
}

/// The `tag` elements of `svg` drawn in `colour` (as stroke or fill), each as its points.
fn drawn(svg: &str, tag: &str, colour: plotters::style::RGBColor) -> Vec<Vec<(f64, f64)>> {
    let hex = format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2);
    svg.split(&format!("<{tag} "))
        .skip(1)
        .map(|e| &e[..e.find("/>").unwrap_or(e.len())])
        .filter(|e| e.to_uppercase().contains(&hex))
        .map(points_of)
        .collect()
}

/// The text of each row's cells in the table `id` of a dumped DOM (tags stripped).
fn rows_of(dom: &str, id: &str) -> Vec<Vec<String>> {
    let start = dom
        .find(&format!("id=\"{id}-table\""))
        .unwrap_or_else(|| panic!("no {id} table in the page"));
    let table = &dom[start..start + dom[start..].find("</table>").expect("table end")];
    let body = &table[table.find("<tbody>").expect("tbody")..];
    let text = |cell: &str| {
        let mut out = String::new();
        for (n, part) in cell.split(['<', '>']).enumerate() {
            if n % 2 == 0 {
                out.push_str(part);
            }
        }
        out.replace("&amp;", "&").trim().to_owned()
    };
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|c| text(&format!("<td{c}")))
                .collect()
        })
        .collect()
}

/// `report --since` as a user runs it: its table's rows, each as its cells.
fn report_since(data_dir: &std::path::Path, since: chrono::NaiveDate) -> Vec<Vec<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_batch-orchestrator"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["report", "--since", &since.to_string()])
        .output()
        .expect("the CLI runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter(|l| l.starts_with('│') && l.chars().nth(2).is_some_and(|c| c.is_ascii_digit()))
        .map(|l| {
            l.trim_matches('│')
                .split(['│', '┆'])
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn when_a_night_was_redriven_on_demand_should_chart_it_and_list_the_nights_as_report_does() {
    use crate::deadlines::{night_options, post_named, IMAGES};
    use batch_orchestrator::ops::charts::{ANSWERED, DEADLINE, IMAGES as LEVEL, ON_DEMAND};
    let Some(bin) = browser() else { return };
    // Two nights that have ended: the night before last and last night, 20:00 UTC each.
    let today = chrono::Utc::now().date_naive();
    let evening = |d: chrono::NaiveDate| d.and_hms_opt(20, 0, 0).expect("time").and_utc();
    let (first, second) = (
        today - chrono::Duration::days(2),
        today - chrono::Duration::days(1),
    );
    let app = app_with(|o| {
        night_options(o);
        o.clock_start = Some(evening(first));
    })
    .await;
    // The first night runs by batch.
    post_named(&app, "first-night").await;
    run(&app).await;
    // The second: its shared job sticks in Scheduled, is stopped at its cut-off, and its
    // records are redriven on-demand before the deadline.
    app.manual_clock()
        .expect("manual")
        .advance_to(evening(second));
    app.emulator
        .set_options(|o| o.faults = vec![BedrockFault::StuckScheduled]);
    let deadline = post_named(&app, "second-night").await;
    run(&app).await;
    let member = intent_named(&app, "second-night");
    let rs = results(&app, &member).await;
    assert_eq!(
        rs.iter().filter(|r| r.on_demand).count(),
        IMAGES,
        "redriven"
    );

    let (url, operator) = serve_ops(app.app.clone(), app.data_dir()).await;
    let page = format!("{url}/ops#token={operator}&night={second}");
    let dom = tokio::task::spawn_blocking(move || {
        chromium(bin, &["--window-size=1280,900", "--dump-dom", &page])
    })
    .await
    .expect("browser");
    let dom = String::from_utf8_lossy(&dom.stdout).to_string();

    // The answered chart: the answered line reaches the images' level left of the deadline.
    let start = dom
        .find("id=\"chart-answered\"")
        .expect("the answered chart");
    let svg = &dom[start..start + dom[start..].find("</svg>").expect("an SVG")];
    let level = drawn(svg, "polyline", LEVEL);
    let level_y = level
        .first()
        .and_then(|l| l.first())
        .expect("the images' level")
        .1;
    let deadline_x = drawn(svg, "polyline", DEADLINE)
        .first()
        .and_then(|l| l.first())
        .expect("the deadline's line")
        .0;
    let answered = drawn(svg, "polyline", ANSWERED);
    let line = answered.first().expect("the answered line");
    let reached = line
        .iter()
        .find(|(_, y)| (y - level_y).abs() < 0.5)
        .unwrap_or_else(|| panic!("the answered line {line:?} never reaches {level_y}"));
    assert!(
        reached.0 < deadline_x,
        "{reached:?} before the deadline at x {deadline_x}"
    );
    // The on-demand band has an area (shoelace).
    let band = drawn(svg, "polygon", ON_DEMAND);
    let area = |p: &Vec<(f64, f64)>| {
        let n = p.len();
        (0..n)
            .map(|i| p[i].0 * p[(i + 1) % n].1 - p[(i + 1) % n].0 * p[i].1)
            .sum::<f64>()
            .abs()
            / 2.0
    };
    assert!(
        band.iter().any(|b| area(b) > 1.0),
        "an on-demand area: {band:?}"
    );
    assert!(deadline <= evening(second) + chrono::Duration::hours(1));

    // The last nights: two rows, each cell as `report --since` prints it.
    let rows = rows_of(&dom, "nights");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows, report_since(app.data_dir(), first));
    assert_eq!(rows[0][0], second.to_string(), "newest first");
    assert_eq!(
        rows[0][4],
        IMAGES.to_string(),
        "the second night on-demand: {rows:?}"
    );
    assert_eq!(
        rows[1][3],
        IMAGES.to_string(),
        "the first night by batch: {rows:?}"
    );
    // Finished jobs of the night stay listed, and nothing runs off a 1280 px window.
    let jobs = rows_of(&dom, "jobs");
    let statuses: Vec<&str> = jobs.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(
        statuses,
        ["Stopped (stopped at cut-off)", "Completed (on-demand)"],
        "tonight's ended jobs: {jobs:?}"
    );
    let width: u32 = dom
        .split("data-scroll-width=\"")
        .nth(1)
        .and_then(|w| w.split('"').next()?.parse().ok())
        .expect("the page's width");
    assert!(width <= 1280, "the page is {width} px wide");

    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ops-night.png");
    let args = [
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,1500".to_owned(),
        "--hide-scrollbars".to_owned(),
        format!("{url}/ops#token={operator}&night={second}"),
    ];
    tokio::task::spawn_blocking(move || chromium(CHROMIUM, &args.each_ref().map(String::as_str)))
        .await
        .expect("screenshot");
    assert!(shot.exists(), "a screenshot at {}", shot.display());
}
