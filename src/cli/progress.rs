//! Progress of a long command (`seed-demo`): a bar with the rate and the time left on a
//! terminal; on a pipe or a log file, a plain line every few seconds and at the end.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is written when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

pub enum Progress {
    Bar(ProgressBar),
    Lines {
        what: &'static str,
        started: Instant,
        last_line: Option<Instant>,
    },
}

impl Progress {
    /// Progress over `total` items named `what` ("events").
    pub fn new(total: u64, what: &'static str) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::Lines {
                what,
                started: Instant::now(),
                last_line: None,
            };
        }
        let bar = ProgressBar::new(total);
        let template = format!(
            "{{bar:40.cyan/blue}} {{human_pos}}/{{human_len}} {what} · {{per_sec}} · {{eta}} left"
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self::Bar(bar)
    }

    /// `done` of `total` items are finished.
    pub fn update(&mut self, done: u64, total: u64) {
        match self {
            Self::Bar(bar) => {
                bar.set_position(done);
                if done >= total {
                    bar.finish();
                }
            }
            Self::Lines {
                what,
                started,
                last_line,
            } => {
                let due = last_line.is_none_or(|at| at.elapsed() >= LINE_EVERY);
                if !(due || done >= total) {
                    return;
                }
                *last_line = Some(Instant::now());
                let line = plain_line(what, done, total, started.elapsed());
                // Not `eprintln!`: it panics when stderr is closed.
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }
}

/// `1200 of 5000 events (24%), 400/s, about 10 s left`.
fn plain_line(what: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let left = if rate > 0.0 {
        format!(
            ", about {} s left",
            (total.saturating_sub(done) as f64 / rate).ceil()
        )
    } else {
        String::new()
    };
    format!("{done} of {total} {what} ({percent}%), {rate:.0}/s{left}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_names_the_share_the_rate_and_the_time_left() {
        let line = plain_line("events", 1_200, 5_000, Duration::from_secs(3));
        assert_eq!(line, "1200 of 5000 events (24%), 400/s, about 10 s left");
    }
}
