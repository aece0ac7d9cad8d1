//! Terminal progress bars for the library's `Progress` reports.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shopfuse_core::Progress;

/// Terminal progress for the stages; hidden when stderr is not a terminal or with --quiet.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(hidden: bool) -> Self {
        Bar(styled_bar(
            hidden,
            "{msg:24} [{bar:30}] {human_pos}/{human_len} {per_sec} {eta}",
        ))
    }
}

/// A bar on stderr (hidden when `hidden`) drawn with `template`.
pub fn styled_bar(hidden: bool, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(0),
        if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

impl Progress for Bar {
    fn start(&self, phase: &str, total: u64) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_message(phase.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
