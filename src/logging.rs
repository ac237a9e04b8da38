//! The process's log output: `tracing` events as text or JSON lines on stderr, filtered by
//! `[log] level` or, when set, `RUST_LOG` (an `EnvFilter` directive, which wins).
//!
//! Under systemd (`JOURNAL_STREAM` set, as for a service whose stderr is the journal) text lines
//! carry no timestamp of their own, since journald stamps each one, and start with the syslog
//! priority prefix (`<3>` error … `<7>` debug) that journald reads, so `journalctl -p warning`
//! shows warnings and worse. JSON lines stay plain JSON objects. Operators search by the fields
//! `session`, `room`, `stream`, `identity`, `worker`, `remote` and `reason`; no token, key or
//! whole SDP is ever logged at info. Workers never log per packet: they count, and their rare
//! warnings go through [`Throttle`](crate::datapath::Throttle).

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat, LogLevel};

/// Where log lines go, as read from the environment at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// A terminal or a pipe: timestamps in each line, colours on a terminal.
    Plain,
    /// The systemd journal (`JOURNAL_STREAM` is set): priority prefixes, no timestamps.
    Journal,
}

impl Sink {
    /// The journal if systemd connected stderr to it, else plain.
    pub fn from_env() -> Self {
        if std::env::var_os("JOURNAL_STREAM").is_some_and(|v| !v.is_empty()) {
            Sink::Journal
        } else {
            Sink::Plain
        }
    }
}

/// The filter directive for `level`: Tern's own targets at `level`, every dependency at `level`
/// or `warn`, whichever says less (a `debug` relay does not print its HTTP stack's internals).
pub fn directive(level: LogLevel) -> String {
    let name = |l: LogLevel| match l {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let deps = match level {
        LogLevel::Error => LogLevel::Error,
        _ => LogLevel::Warn,
    };
    format!("{},tern={}", name(deps), name(level))
}

/// The filter: `RUST_LOG` if it is set and parses, else `[log] level`. A `RUST_LOG` that does
/// not parse is reported in the returned warning and the config's level is used.
pub fn filter(config: &LogConfig) -> (EnvFilter, Option<String>) {
    let from_config = || EnvFilter::new(directive(config.level));
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => (f, None),
            Err(e) => (
                from_config(),
                Some(format!("RUST_LOG={v:?} ignored ({e}); using [log] level")),
            ),
        },
        _ => (from_config(), None),
    }
}

/// Installs the process-wide subscriber for `config` writing to stderr. Call once, early; a
/// second call leaves the first subscriber in place and returns false.
pub fn init(config: &LogConfig) -> bool {
    let (filter, warning) = filter(config);
    let sink = Sink::from_env();
    let ansi = sink == Sink::Plain && std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match (config.format, sink) {
        (LogFormat::Json, _) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
            .is_ok(),
        (LogFormat::Text, Sink::Plain) => builder.with_ansi(ansi).try_init().is_ok(),
        (LogFormat::Text, Sink::Journal) => {
            let inner = tracing_subscriber::fmt::format()
                .without_time()
                .with_ansi(false);
            builder
                .with_ansi(false)
                .event_format(JournalPrefix(inner))
                .try_init()
                .is_ok()
        }
    };
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    installed
}

/// The syslog priority journald reads from a line's `<N>` prefix.
pub fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Wraps a text format, prefixing each line with its journal priority.
#[derive(Debug)]
struct JournalPrefix<F>(F);

impl<S, N, F> FormatEvent<S, N> for JournalPrefix<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_names_tern_and_caps_dependencies_at_warn() {
        assert_eq!(directive(LogLevel::Info), "warn,tern=info");
        assert_eq!(directive(LogLevel::Debug), "warn,tern=debug");
        assert_eq!(directive(LogLevel::Error), "error,tern=error");
        for l in [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Trace,
        ] {
            assert!(EnvFilter::try_new(directive(l)).is_ok());
        }
    }

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
        assert_eq!(priority(&Level::TRACE), 7);
    }
}
