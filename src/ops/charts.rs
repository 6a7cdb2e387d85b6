//! The night's charts on the operator page, drawn here as SVG by `plotters` (its SVG backend,
//! no fonts: the browser sets the text): answers over time against the deadline, job slots per
//! model, and cost against the all-batch and all-on-demand lines. Time runs in hours from the
//! night's midnight (UTC), so a night past midnight reads 23:00, 00:30, …
//!
//! Each series has its own colour ([`BATCH`], [`ON_DEMAND`], …), which is how the browser
//! test finds it in the SVG.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use plotters::prelude::*;
use shared::domain::night::NightPoint;

/// Answered in batch: the area from 0.
pub const BATCH: RGBColor = RGBColor(0x3B, 0x6F, 0xD8);
/// Answered on-demand: the band stacked on batch.
pub const ON_DEMAND: RGBColor = RGBColor(0xE8, 0x91, 0x2D);
/// Every answer (batch, on-demand and copies): a line.
pub const ANSWERED: RGBColor = RGBColor(0x1D, 0x23, 0x30);
/// The night's images: a level line.
pub const IMAGES: RGBColor = RGBColor(0x2E, 0x7D, 0x32);
/// The night's (latest) deadline: an upright line.
pub const DEADLINE: RGBColor = RGBColor(0xB3, 0x26, 0x1E);
/// What was paid.
pub const COST: RGBColor = RGBColor(0x1D, 0x23, 0x30);
/// Had every answer run in batch.
pub const ALL_BATCH: RGBColor = RGBColor(0x3B, 0x6F, 0xD8);
/// Had every answer run on-demand.
pub const ALL_ON_DEMAND: RGBColor = RGBColor(0xE8, 0x91, 0x2D);
/// One colour per model on the slots chart, in model order.
const MODELS: [RGBColor; 4] = [
    RGBColor(0x6A, 0x1B, 0x9A),
    RGBColor(0x00, 0x83, 0x8F),
    RGBColor(0xC2, 0x18, 0x5B),
    RGBColor(0x55, 0x8B, 0x2F),
];

const SIZE: (u32, u32) = (600, 260);

/// The three charts of a night; None for a night without points.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Charts {
    pub answered: String,
    pub slots: String,
    pub cost: String,
}

type Drawn = Result<(), Box<dyn std::error::Error>>;

/// One figure of a point.
type Figure = fn(&NightPoint) -> f64;

/// The charts of `night` from its `points` (oldest first).
pub fn charts(night: NaiveDate, points: &[NightPoint]) -> Option<Charts> {
    let first = points.first()?;
    let hours = |t: DateTime<Utc>| {
        let midnight = night.and_time(chrono::NaiveTime::MIN).and_utc();
        (t - midnight).num_milliseconds() as f64 / 3_600_000.0
    };
    let deadline = points.iter().rev().find_map(|p| p.deadline).map(hours);
    let start = hours(first.at).min(deadline.unwrap_or(f64::MAX));
    let end = points
        .iter()
        .map(|p| hours(p.at))
        .fold(deadline.unwrap_or(start), f64::max);
    let pad = ((end - start) * 0.05).max(1.0 / 120.0);
    let ended = points.last().is_some_and(|p| p.open_intents == 0);
    let last = points.last().map_or(start, |p| hours(p.at));
    let axis = Axis {
        x: (start - pad)..(end + pad),
        hold_to: if ended { end + pad } else { last },
        at: points.iter().map(|p| hours(p.at)).collect(),
        deadline,
    };
    Some(Charts {
        answered: svg(|area| answered(area, &axis, points)),
        slots: svg(|area| slots(area, &axis, points)),
        cost: svg(|area| cost(area, &axis, points)),
    })
}

/// The time axis shared by the three charts.
struct Axis {
    x: std::ops::Range<f64>,
    /// Each point's time, in hours.
    at: Vec<f64>,
    /// Where the last values end: the axis' end once the night has ended, else its last point.
    hold_to: f64,
    deadline: Option<f64>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn svg(draw: impl FnOnce(&Area<'_>) -> Drawn) -> String {
    let mut out = String::new();
    {
        let area = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        let drawn = area
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&area))
            .and_then(|()| area.present().map_err(Into::into));
        if let Err(e) = drawn {
            tracing::warn!(error = %e, "drawing a chart failed");
        }
    }
    out
}

/// A series as steps: each value holds until the next point (what is known between passes),
/// the last one to the axis' `end`.
fn steps(series: impl IntoIterator<Item = (f64, f64)>, end: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (x, y) in series {
        if let Some(&(_, before)) = out.last() {
            out.push((x, before));
        }
        out.push((x, y));
    }
    if let Some(&(_, last)) = out.last() {
        out.push((end, last));
    }
    out
}

/// "23:30" for 23.5 h, "01:15" for 25.25 h (the next morning).
fn clock(h: &f64) -> String {
    let t = time_of_day(*h);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// "23:30:15": for a night of minutes, where minutes would repeat.
fn clock_secs(h: &f64) -> String {
    let t = time_of_day(*h);
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

fn time_of_day(h: f64) -> chrono::NaiveTime {
    let secs = (h * 3600.0).round() as i64;
    chrono::NaiveTime::MIN + chrono::Duration::seconds(secs.rem_euclid(24 * 3600))
}

/// A chart's frame: the time axis, `y` from 0 to `top`, the deadline's line.
fn frame<'a, 'b>(
    area: &'a Area<'b>,
    axis: &Axis,
    top: f64,
    y_label: &'a dyn Fn(&f64) -> String,
) -> Result<
    ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    Box<dyn std::error::Error>,
> {
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(56)
        .build_cartesian_2d(axis.x.clone(), 0.0..top.max(1e-9) * 1.08)?;
    chart
        .configure_mesh()
        .x_labels(7)
        .y_labels(5)
        .x_label_formatter(if axis.x.end - axis.x.start < 0.2 {
            &clock_secs
        } else {
            &clock
        })
        .y_label_formatter(y_label)
        .light_line_style(RGBColor(0xEE, 0xF0, 0xF4))
        .draw()?;
    if let Some(d) = axis.deadline {
        let (lo, hi) = (0.0, top.max(1e-9) * 1.08);
        chart.draw_series(LineSeries::new(
            [(d, lo), (d, hi)],
            DEADLINE.stroke_width(2),
        ))?;
    }
    Ok(chart)
}

fn answered(area: &Area<'_>, axis: &Axis, points: &[NightPoint]) -> Drawn {
    let images = points.iter().map(|p| p.images).max().unwrap_or(0) as f64;
    let label = |y: &f64| format!("{y:.0}");
    let mut chart = frame(area, axis, images, &label)?;
    let series = |f: fn(&NightPoint) -> u64| {
        steps(
            axis.at.iter().zip(points).map(|(x, p)| (*x, f(p) as f64)),
            axis.hold_to,
        )
    };
    let batch = series(|p| p.answered.batch);
    let stacked = series(|p| p.answered.batch + p.answered.on_demand);
    chart.draw_series(AreaSeries::new(batch.clone(), 0.0, BATCH.mix(0.55)))?;
    // The on-demand band: up along the stacked top, back along batch.
    let band: Vec<(f64, f64)> = stacked.iter().chain(batch.iter().rev()).copied().collect();
    chart.draw_series(std::iter::once(Polygon::new(band, ON_DEMAND.mix(0.7))))?;
    let level = [(axis.x.start, images), (axis.x.end, images)];
    chart.draw_series(LineSeries::new(level, IMAGES.stroke_width(1)))?;
    let answered = series(|p| p.answered.answered());
    chart.draw_series(LineSeries::new(answered, ANSWERED.stroke_width(2)))?;
    Ok(())
}

fn slots(area: &Area<'_>, axis: &Axis, points: &[NightPoint]) -> Drawn {
    let models: std::collections::BTreeSet<&String> =
        points.iter().flat_map(|p| p.slots.keys()).collect();
    let top = points
        .iter()
        .flat_map(|p| p.slots.values())
        .copied()
        .max()
        .unwrap_or(1) as f64;
    let label = |y: &f64| format!("{y:.0}");
    let mut chart = frame(area, axis, top, &label)?;
    for (n, model) in models.into_iter().enumerate() {
        let series = steps(
            axis.at
                .iter()
                .zip(points)
                .filter_map(|(x, p)| p.slots.get(model).map(|s| (*x, f64::from(*s)))),
            axis.hold_to,
        );
        let colour = MODELS[n % MODELS.len()];
        chart.draw_series(LineSeries::new(series, colour.stroke_width(2)))?;
    }
    Ok(())
}

fn cost(area: &Area<'_>, axis: &Axis, points: &[NightPoint]) -> Drawn {
    let top = points.iter().map(|p| p.on_demand_usd).fold(0.0, f64::max);
    let label = |y: &f64| format!("${y:.4}");
    let mut chart = frame(area, axis, top, &label)?;
    let lines: [(RGBColor, Figure); 3] = [
        (ALL_ON_DEMAND, |p| p.on_demand_usd),
        (ALL_BATCH, |p| p.batch_usd),
        (COST, |p| p.cost_usd),
    ];
    for (colour, value) in lines {
        let series = steps(
            axis.at.iter().zip(points).map(|(x, p)| (*x, value(p))),
            axis.hold_to,
        );
        chart.draw_series(LineSeries::new(series, colour.stroke_width(2)))?;
    }
    Ok(())
}
