//! Progress for the long local commands (uploading a folder, running thousands of images
//! through the pipeline, serving): drawn on stderr with `indicatif`, and only when stdout is a
//! terminal, so a piped or scripted run prints exactly what it printed before.

use crate::embedded::Step;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal as _;
use std::time::Duration;

fn target() -> ProgressDrawTarget {
    if std::io::stdout().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// A bar over `len` items of `what`.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(Some(len), target());
    pb.set_style(style(
        "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)",
    ));
    pb.set_message(what.to_owned());
    pb
}

/// A spinner for the pipeline, whose length nobody knows: [`PipelineTotals`] fills its line.
pub fn spinner() -> ProgressBar {
    let pb = ProgressBar::with_draw_target(None, target());
    pb.set_style(style("{spinner} {msg} ({elapsed})"));
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// What the runner has done so far, for the spinner's line.
#[derive(Debug, Default, Clone, Copy)]
pub struct PipelineTotals {
    pub passes: usize,
    pub delivered: usize,
    pub failed: usize,
    pub jobs_ticked: usize,
    pub repaired: usize,
}

impl PipelineTotals {
    pub fn add(&mut self, step: &Step) {
        self.passes += 1;
        self.delivered += step.delivered;
        self.failed += step.failed;
        self.jobs_ticked += step.jobs_ticked;
        self.repaired += step.swept;
    }

    pub fn line(&self) -> String {
        format!(
            "pipeline: {} passes, {} messages handled ({} retried), {} Bedrock job steps, {} scheduled repairs",
            self.passes, self.delivered, self.failed, self.jobs_ticked, self.repaired
        )
    }
}
