//! The runner's log: quiet unless `--log-level` or `NUCLEUS_LOG` asks for
//! it; then each launch step is a span whose close line carries its time
//! (`time.busy`), and the child's stages are events the parent logs from
//! the channel's records. Written to stderr, as text or JSON lines.

use std::str::FromStr;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The environment variable that sets the log level when no flag does.
pub(crate) const ENV: &str = "NUCLEUS_LOG";

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// Installs the log when a level is asked (the flag first, then
/// `NUCLEUS_LOG`); otherwise nothing is logged and logging costs nothing.
/// A `NUCLEUS_LOG` that names no level is an error the caller warns of.
pub(crate) fn init(flag: Option<LevelFilter>, format: LogFormat) -> Result<(), String> {
    let level = match (flag, std::env::var(ENV)) {
        (Some(level), _) => level,
        (None, Ok(value)) if !value.trim().is_empty() => LevelFilter::from_str(value.trim())
            .map_err(|_| {
                format!("{ENV}={value:?} is not a level (error, warn, info, debug, trace, off); not logging")
            })?,
        _ => return Ok(()),
    };
    if level == LevelFilter::OFF {
        return Ok(());
    }
    // Only the runner's own steps: a library's events (wasmtime-wasi traces
    // every host call of a wasm workload) would drown them, and would be
    // written from inside the sandbox.
    let ours = Targets::new().with_target("nucleus_runner", level);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::CLOSE);
    let layer = match format {
        LogFormat::Text => layer.with_filter(ours).boxed(),
        LogFormat::Json => layer.json().with_filter(ours).boxed(),
    };
    tracing_subscriber::registry()
        .with(layer)
        .try_init()
        .map_err(|e| format!("cannot install the log: {e}"))
}
