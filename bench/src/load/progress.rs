//! The live progress of a run on stderr: a line rewritten in place on a terminal, plain lines
//! when stderr is a file or a pipe, or nothing.

use std::io::{IsTerminal, Write};

/// How the live progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// A `\r`-updated line on a terminal, plain lines otherwise (on stderr).
    #[default]
    Auto,
    /// Nothing (library use, tests).
    Off,
}

/// Where progress goes: a terminal line rewritten in place, plain lines, or nowhere.
#[derive(Debug, Clone, Copy)]
pub(super) enum ProgressSink {
    Tty,
    Plain,
    Off,
}

impl Progress {
    pub(super) fn resolve(p: Progress) -> ProgressSink {
        match p {
            Progress::Off => ProgressSink::Off,
            Progress::Auto if std::io::stderr().is_terminal() => ProgressSink::Tty,
            Progress::Auto => ProgressSink::Plain,
        }
    }
}

impl ProgressSink {
    pub(super) fn line(&self, text: &str) {
        match self {
            ProgressSink::Off => {}
            _ => eprintln!("{text}"),
        }
    }

    pub(super) fn live(&self, text: &str) {
        match self {
            ProgressSink::Off => {}
            ProgressSink::Plain => eprintln!("{text}"),
            ProgressSink::Tty => {
                let mut e = std::io::stderr().lock();
                let _ = write!(e, "\r\x1b[2K{text}");
                let _ = e.flush();
            }
        }
    }

    pub(super) fn finish(&self) {
        if let ProgressSink::Tty = self {
            eprintln!();
        }
    }
}
