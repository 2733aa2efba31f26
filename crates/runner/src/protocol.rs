//! The protocol of `nucleus-run serve`: what a client sends over the unix
//! socket and what the server answers. `docs/PROTOCOL.md` is its full text;
//! this module is the one implementation both sides use.
//!
//! One connection carries one request (a run here; the session ops are
//! in `docs/PROTOCOL.md`):
//!
//! 1. The client sends one **frame**: a 4-byte big-endian length, then that
//!    many bytes of a JSON [`Request`] (at most [`MAX_REQUEST`]). The first
//!    byte of the frame comes with 0 to 3 file descriptors (`SCM_RIGHTS`):
//!    the workload's stdin, stdout and stderr, in that order; a missing one
//!    is `/dev/null`.
//! 2. The server answers with one frame holding a JSON [`Reply`]: the same
//!    result object as `nucleus-run --json`, or an error.
//! 3. Closing the connection before the reply kills the sandbox.
//!
//! ```
//! use nucleus_runner::protocol::{self, Request};
//! use nucleus_runner::Envelope;
//!
//! let env = Envelope::builder(["/bin/echo", "hi"]).build()?;
//! let frame = protocol::encode_request(&Request::run(env))?;
//! let len = protocol::frame_len(frame[..4].try_into().unwrap(), protocol::MAX_REQUEST)?;
//! let back = protocol::decode_request(&frame[4..4 + len])?;
//! assert_eq!(back.envelope().unwrap().command, ["/bin/echo", "hi"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::Envelope;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The protocol version this build speaks; a request names the one it uses.
pub const VERSION: u32 = 1;

/// The largest request body a server reads (1 MiB).
pub const MAX_REQUEST: usize = 1 << 20;

/// The largest reply body a client reads (256 MiB: captured output rides in it).
pub const MAX_REPLY: usize = 256 << 20;

/// The most file descriptors a request carries: stdin, stdout, stderr.
pub const MAX_FDS: usize = 3;

/// The longest session name.
pub const MAX_SESSION_NAME: usize = 64;

/// What a request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Op {
    /// Run the envelope's command in a new sandbox and reply with its result.
    #[default]
    Run,
    /// Make the sandbox of `envelope` (its command is not run) and keep it
    /// as session `session` until `session-rm`, its idle timeout or the
    /// server's stop. The reply's result is `{"session": NAME, "pid": PID}`.
    SessionCreate,
    /// Run `exec` in session `session`: same filesystem view, writable
    /// state, namespaces and cgroup as the session's earlier commands. The
    /// result is the run's, as for `run`.
    SessionExec,
    /// End session `session`: its processes are killed and what it made is
    /// removed before the reply, `{"removed": NAME}`.
    SessionRm,
    /// List the sessions: `{"sessions": [{"name", "pid", "idle_timeout"}]}`.
    SessionLs,
}

impl Op {
    /// The op's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Op::Run => "run",
            Op::SessionCreate => "session-create",
            Op::SessionExec => "session-exec",
            Op::SessionRm => "session-rm",
            Op::SessionLs => "session-ls",
        }
    }
}

/// One command of a session (`session-exec`): the session's envelope
/// gives everything else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Exec {
    /// The program and its arguments (searched on the session's `PATH`).
    pub command: Vec<String>,
    /// Variables set for this command, over the session's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The directory it starts in, inside the sandbox (default: the
    /// session's workdir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<PathBuf>,
    /// Its wall-clock limit (default: the session envelope's `timeout`);
    /// only this command is killed when it runs out.
    #[serde(
        default,
        with = "crate::duration::opt_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<std::time::Duration>,
    /// Capture up to this many bytes of stdout and stderr into the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<u64>,
}

/// One request: the Envelope (the JSON of `--config`) and how to run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The protocol version the client speaks: [`VERSION`].
    pub version: u32,
    /// What to do.
    #[serde(default)]
    pub op: Op,
    /// The sandbox, as `nucleus-run --config FILE.json` reads it (`run`,
    /// `session-create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
    /// The session's name (the `session-*` ops but `session-ls`): 1 to 64
    /// of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The command of a `session-exec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Exec>,
    /// How long a session lives without a command running before it is
    /// removed (`session-create`; default 10 minutes).
    #[serde(
        default,
        with = "crate::duration::opt_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<std::time::Duration>,
    /// The directory relative paths of the Envelope are taken from (the
    /// client's working directory); the server's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// The client's environment, which `env_keep` and the runtime's lookup
    /// (`PATH` for runsc, `XDG_RUNTIME_DIR`) read; the server's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environ: Option<BTreeMap<String, String>>,
}

impl Request {
    /// A request to run `envelope`, with the server's directory and environment.
    ///
    /// ```
    /// let env = nucleus_runner::Envelope::builder(["/bin/true"]).build().unwrap();
    /// let req = nucleus_runner::protocol::Request::run(env);
    /// assert_eq!(req.version, nucleus_runner::protocol::VERSION);
    /// ```
    pub fn run(envelope: Envelope) -> Request {
        Request {
            envelope: Some(envelope),
            ..Request::op(Op::Run)
        }
    }

    /// A request of `op` with no field set: the `session-*` ops fill in
    /// theirs.
    ///
    /// ```
    /// use nucleus_runner::protocol::{Op, Request};
    /// let mut req = Request::op(Op::SessionRm);
    /// req.session = Some("agent-1".into());
    /// assert!(nucleus_runner::protocol::encode_request(&req).is_ok());
    /// ```
    pub fn op(op: Op) -> Request {
        Request {
            version: VERSION,
            op,
            envelope: None,
            session: None,
            exec: None,
            idle_timeout: None,
            cwd: None,
            environ: None,
        }
    }

    /// The envelope of a `run` or `session-create` (checked there by
    /// [`decode_request`]).
    pub fn envelope(&self) -> Option<&Envelope> {
        self.envelope.as_ref()
    }

    /// Checks that the op has the fields it needs and no other.
    fn check_fields(&self) -> Result<(), ProtocolError> {
        let has = [
            ("envelope", self.envelope.is_some()),
            ("session", self.session.is_some()),
            ("exec", self.exec.is_some()),
            ("idle_timeout", self.idle_timeout.is_some()),
        ];
        let needs: &[&str] = match self.op {
            Op::Run => &["envelope"],
            Op::SessionCreate => &["envelope", "session"],
            Op::SessionExec => &["session", "exec"],
            Op::SessionRm => &["session"],
            Op::SessionLs => &[],
        };
        let may: &[&str] = match self.op {
            Op::SessionCreate => &["idle_timeout"],
            _ => &[],
        };
        for (field, present) in has {
            let needed = needs.contains(&field);
            if needed && !present {
                return Err(ProtocolError::Malformed(format!(
                    "a {} request needs the field `{field}`",
                    self.op.name()
                )));
            }
            if present && !needed && !may.contains(&field) {
                return Err(ProtocolError::Malformed(format!(
                    "a {} request has no field `{field}`",
                    self.op.name()
                )));
            }
        }
        if let Some(name) = &self.session {
            check_session_name(name)?;
        }
        if self.exec.as_ref().is_some_and(|e| e.command.is_empty()) {
            return Err(ProtocolError::Malformed(
                "a session-exec needs a command (exec.command is empty)".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A session name: 1 to [`MAX_SESSION_NAME`] of `A-Z a-z 0-9 . _ -`, not
/// starting with `.` or `-`.
///
/// ```
/// use nucleus_runner::protocol::check_session_name;
/// assert!(check_session_name("agent-7.shell").is_ok());
/// assert!(check_session_name("../x").is_err());
/// assert!(check_session_name("").is_err());
/// ```
pub fn check_session_name(name: &str) -> Result<(), ProtocolError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let ok = !name.is_empty()
        && name.len() <= MAX_SESSION_NAME
        && name.chars().all(allowed)
        && !name.starts_with(['.', '-']);
    if ok {
        return Ok(());
    }
    Err(ProtocolError::Malformed(format!(
        "the session name {name:?} is not valid: 1 to {MAX_SESSION_NAME} of A-Z a-z 0-9 . _ -, \
         not starting with . or -"
    )))
}

/// The server's answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The protocol version of the server.
    pub version: u32,
    /// The run's result, as `nucleus-run --json` prints it (its text, in
    /// its order: `schema_version` first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<serde_json::value::RawValue>>,
    /// Why there is no result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
}

/// Why a request has no result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyError {
    /// The class of the failure.
    pub kind: ErrorKind,
    /// What failed, for a person.
    pub message: String,
}

/// The classes of [`ReplyError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The request could not be read: framing, JSON, version, size, fds.
    BadRequest,
    /// The peer is neither the server's user nor root.
    Refused,
    /// The server runs as many sandboxes as it may; try again later.
    Busy,
    /// The sandbox could not be set up (what `nucleus-run` exits 125 for).
    Setup,
    /// No session has that name (`session-exec`, `session-rm`).
    NotFound,
    /// A session of that name exists already (`session-create`).
    Exists,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::BadRequest => "bad request",
            ErrorKind::Refused => "refused",
            ErrorKind::Busy => "busy",
            ErrorKind::Setup => "setup failed",
            ErrorKind::NotFound => "no such session",
            ErrorKind::Exists => "session exists",
        })
    }
}

/// A frame or a message that does not follow the protocol.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The length prefix is larger than the limit.
    #[error("a frame of {len} bytes is larger than the limit of {max}")]
    TooLarge {
        /// The length the prefix gave.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not a message of this protocol.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The message names a version this side does not speak.
    #[error("protocol version {got} is not supported (this side speaks {VERSION})")]
    Version {
        /// The version the message named.
        got: u32,
    },
}

/// The body length a frame's 4-byte header announces, if within `max`.
///
/// ```
/// use nucleus_runner::protocol::frame_len;
/// assert_eq!(frame_len([0, 0, 1, 0], 1024), Ok(256));
/// assert!(frame_len([1, 0, 0, 0], 1024).is_err());
/// ```
pub fn frame_len(header: [u8; 4], max: usize) -> Result<usize, ProtocolError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(ProtocolError::TooLarge { len, max });
    }
    Ok(len)
}

/// A frame: the 4-byte big-endian length of `body`, then `body`.
fn frame(body: Vec<u8>, max: usize) -> Result<Vec<u8>, ProtocolError> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&len| len as usize <= max)
        .ok_or(ProtocolError::TooLarge {
            len: body.len(),
            max,
        })?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend(body);
    Ok(out)
}

/// The frame of `req`.
///
/// ```
/// let env = nucleus_runner::Envelope::builder(["/bin/true"]).build().unwrap();
/// let frame = nucleus_runner::protocol::encode_request(&nucleus_runner::protocol::Request::run(env)).unwrap();
/// assert_eq!(u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize, frame.len() - 4);
/// ```
pub fn encode_request(req: &Request) -> Result<Vec<u8>, ProtocolError> {
    let body = serde_json::to_vec(req).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    frame(body, MAX_REQUEST)
}

/// The request in a frame's body: JSON of this version, every field known.
///
/// ```
/// use nucleus_runner::protocol::{decode_request, ProtocolError};
/// let req = decode_request(br#"{"version":1,"envelope":{"command":["/bin/true"]}}"#).unwrap();
/// assert_eq!(req.envelope().unwrap().command, ["/bin/true"]);
/// assert_eq!(
///     decode_request(br#"{"version":2,"envelope":{}}"#),
///     Err(ProtocolError::Version { got: 2 })
/// );
/// assert!(decode_request(b"{").is_err());
/// ```
pub fn decode_request(body: &[u8]) -> Result<Request, ProtocolError> {
    // The version first, so that a newer client hears why, not which field.
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let versioned: Versioned =
        serde_json::from_slice(body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if versioned.version != VERSION {
        return Err(ProtocolError::Version {
            got: versioned.version,
        });
    }
    let req: Request =
        serde_json::from_slice(body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    req.check_fields()?;
    Ok(req)
}

/// The frame of a reply carrying `result` (an [`Outcome`](crate::Outcome)).
pub(crate) fn encode_result(result: &crate::Outcome) -> Result<Vec<u8>, ProtocolError> {
    let mut body = format!(r#"{{"version":{VERSION},"result":"#).into_bytes();
    serde_json::to_writer(&mut body, result)
        .map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    body.push(b'}');
    frame(body, MAX_REPLY)
}

/// The frame of a launch's reply: its result, or the `setup` error.
pub(crate) fn encode_outcome(outcome: Result<crate::Outcome, crate::RunError>) -> Vec<u8> {
    match outcome {
        Ok(outcome) => encode_result(&outcome).unwrap_or_else(|e| {
            encode_error(ErrorKind::Setup, &format!("cannot encode the result: {e}"))
        }),
        Err(err) => encode_error(ErrorKind::Setup, &err.chain()),
    }
}

/// The frame of a reply whose result is `value` (the `session-*` ops).
pub(crate) fn encode_value(value: &serde_json::Value) -> Vec<u8> {
    let body = serde_json::json!({ "version": VERSION, "result": value });
    frame(body.to_string().into_bytes(), MAX_REPLY).unwrap_or_default()
}

/// The frame of an error reply.
///
/// ```
/// use nucleus_runner::protocol::{decode_reply, encode_error, ErrorKind};
/// let frame = encode_error(ErrorKind::Busy, "256 sandboxes run");
/// let reply = decode_reply(&frame[4..]).unwrap();
/// assert_eq!(reply.error.unwrap().kind, ErrorKind::Busy);
/// ```
pub fn encode_error(kind: ErrorKind, message: &str) -> Vec<u8> {
    let reply = Reply {
        version: VERSION,
        result: None,
        error: Some(ReplyError {
            kind,
            message: message.to_owned(),
        }),
    };
    // A struct of strings always serializes, and an error message is short.
    let body = serde_json::to_vec(&reply).unwrap_or_default();
    frame(body, MAX_REPLY).unwrap_or_default()
}

/// The reply in a frame's body: exactly one of a result and an error.
///
/// ```
/// let reply = nucleus_runner::protocol::decode_reply(br#"{"version":1,"result":{"exit_code":0}}"#).unwrap();
/// assert_eq!(reply.result.unwrap().get(), r#"{"exit_code":0}"#);
/// assert!(nucleus_runner::protocol::decode_reply(br#"{"version":1}"#).is_err());
/// ```
pub fn decode_reply(body: &[u8]) -> Result<Reply, ProtocolError> {
    let reply: Reply =
        serde_json::from_slice(body).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    if reply.version != VERSION {
        return Err(ProtocolError::Version { got: reply.version });
    }
    if reply.result.is_some() == reply.error.is_some() {
        return Err(ProtocolError::Malformed(
            "a reply holds exactly one of result and error".to_owned(),
        ));
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_with_its_client_context() {
        let env = Envelope::builder(["/bin/sh", "-c", "echo $X"])
            .build()
            .unwrap();
        let mut req = Request::run(env);
        req.cwd = Some("/work".into());
        req.environ = Some([("X".to_owned(), "1".to_owned())].into());
        let frame = encode_request(&req).unwrap();
        let len = frame_len(frame[..4].try_into().unwrap(), MAX_REQUEST).unwrap();
        assert_eq!(decode_request(&frame[4..4 + len]).unwrap(), req);
    }

    #[test]
    fn unknown_fields_and_versions_are_refused_by_name() {
        let err = decode_request(br#"{"version":1,"envelope":{},"extra":1}"#).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
        let err = decode_request(br#"{"version":7}"#).unwrap_err();
        assert_eq!(err, ProtocolError::Version { got: 7 });
        let err = frame_len((MAX_REQUEST as u32 + 1).to_be_bytes(), MAX_REQUEST).unwrap_err();
        assert!(matches!(err, ProtocolError::TooLarge { .. }));
    }
}
