//! The runtime's one error type. Every message is one line a container
//! engine can show as it is; the exit status is runc's (1).

use std::io;
use std::path::PathBuf;

/// What went wrong in a runtime command.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The container id is not one runc would accept.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId {
        /// The id given.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No container of that id under the state root.
    #[error("container does not exist: {id}")]
    NotExist {
        /// The id given.
        id: String,
    },
    /// `create` of an id already in use.
    #[error("container with id {id:?} already exists")]
    Exists {
        /// The id given.
        id: String,
    },
    /// The bundle's `config.json` cannot be read or parsed.
    #[error("bundle {path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The spec asks for something this runtime does not support.
    #[error("unsupported in config.json: {field}: {reason}")]
    Unsupported {
        /// The field, as the spec names it (e.g. `linux.intelRdt`).
        field: String,
        /// Why, or what would work.
        reason: String,
    },
    /// A value in the spec is invalid.
    #[error("invalid config.json: {field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The container is in a state the command cannot act on.
    #[error("container {id:?} is {status}: {what}")]
    BadState {
        /// The container.
        id: String,
        /// Its status.
        status: String,
        /// What was refused.
        what: &'static str,
    },
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// The container's init reported a failure while setting up.
    #[error("container init: {0}")]
    Init(String),
    /// A hook failed.
    #[error("{phase} hook {path}: {reason}")]
    Hook {
        /// The phase (`prestart`, `createRuntime`, ...).
        phase: &'static str,
        /// The hook's program.
        path: PathBuf,
        /// Its failure.
        reason: String,
    },
    /// A layer crate refused or failed.
    #[error("{0}")]
    Layer(String),
}

impl OciError {
    /// An [`OciError::Io`] for `what`.
    pub fn io(what: impl Into<String>, source: io::Error) -> OciError {
        OciError::Io {
            what: what.into(),
            source,
        }
    }

    /// A layer crate's error, with its whole chain of causes on one line.
    pub fn layer(e: &dyn std::error::Error) -> OciError {
        OciError::Layer(chain(e))
    }
}

/// `e` and every source, joined by `: `.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        src = s.source();
    }
    text
}

impl From<nix::Error> for OciError {
    fn from(e: nix::Error) -> OciError {
        OciError::io("system call", io::Error::from(e))
    }
}
