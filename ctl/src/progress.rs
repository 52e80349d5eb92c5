//! Renders the engine's progress reports as an indicatif bar on stderr (only when stderr is
//! a terminal and --quiet is not given).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sharekeep::Progress;
use std::io::IsTerminal;
use std::path::Path;

/// A byte-counting progress bar.
#[derive(Debug)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar labelled `verb`, hidden unless stderr is a terminal.
    pub fn new(verb: &str, quiet: bool) -> Bar {
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if quiet || !std::io::stderr().is_terminal() {
            pb.set_draw_target(ProgressDrawTarget::hidden());
        }
        pb.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )
            .expect("valid template"),
        );
        pb.set_prefix(verb.to_string());
        Bar(pb)
    }
}

impl Progress for Bar {
    fn set_total(&self, files: u64, bytes: u64) {
        self.0.set_length(bytes);
        self.0.set_message(format!("{files} files"));
    }
    fn add_bytes(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn add_file(&self, _path: &Path) {}
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
