//! Progress per device on a terminal: one line on stderr, redrawn in place (`up 1234: applying
//! 3/12 (leaf3)`), erased when the work ends. Nothing is drawn when stderr is not a terminal, so
//! no progress reaches a pipe, a log or a scheduler hook.

use jobnet::apply::{Progress, Silent, Stage};
use std::io::Write;
use std::sync::Mutex;

/// A progress line for `what` when stderr is a terminal, else [`Silent`].
pub fn for_terminal(what: &str) -> Box<dyn Progress> {
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(2) } == 1 {
        Box::new(Line {
            what: what.to_string(),
            state: Mutex::new(State::default()),
        })
    } else {
        Box::new(Silent)
    }
}

#[derive(Default)]
struct State {
    stage: Option<Stage>,
    total: usize,
    done: usize,
    failed: usize,
    drawn: bool,
}

struct Line {
    what: String,
    state: Mutex<State>,
}

impl Line {
    fn draw(&self, s: &mut State, device: &str) {
        let stage = s.stage.map_or("", Stage::as_str);
        let failed = if s.failed > 0 {
            format!(", {} failed", s.failed)
        } else {
            String::new()
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{}: {stage} {}/{}{failed} ({device})",
            self.what, s.done, s.total
        );
        let _ = err.flush();
        s.drawn = true;
    }
}

impl Progress for Line {
    fn start(&self, stage: Stage, devices: usize) {
        let mut s = self.state.lock().expect("progress");
        *s = State {
            stage: Some(stage),
            total: devices,
            drawn: s.drawn,
            ..State::default()
        };
    }

    fn device(&self, _: Stage, device: &str, ok: bool) {
        let mut s = self.state.lock().expect("progress");
        s.done += 1;
        if !ok {
            s.failed += 1;
        }
        self.draw(&mut s, device);
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.state.lock().map(|s| s.drawn).unwrap_or(false) {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
