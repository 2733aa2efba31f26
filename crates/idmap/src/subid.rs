//! The caller, and its subordinate id ranges from `/etc/subuid` and `/etc/subgid`.

use crate::error::IdmapError;
use crate::sys;
use serde::{Deserialize, Serialize};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Who starts the sandbox: the ids whose maps we write and whose
/// subordinate ranges we look up.
///
/// ```
/// use nucleus_idmap::Caller;
/// let me = Caller::current();
/// println!("uid {} gid {} name {:?}", me.uid, me.gid, me.name);
/// let alice = Caller::new(1000, 1000, Some("alice".into()));
/// assert_eq!(alice.name.as_deref(), Some("alice"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// Real uid.
    pub uid: u32,
    /// Real gid.
    pub gid: u32,
    /// User name from the passwd file, when there is one.
    pub name: Option<String>,
}

impl Caller {
    /// A caller with these ids.
    pub fn new(uid: u32, gid: u32, name: Option<String>) -> Self {
        Self { uid, gid, name }
    }

    /// The calling process: `getuid()`, `getgid()`, and the name found for
    /// that uid in `/etc/passwd` (read directly; no NSS modules are loaded).
    pub fn current() -> Self {
        Self::current_with_passwd(Path::new("/etc/passwd"))
    }

    /// Like [`Caller::current`], with the passwd file at `passwd`.
    pub fn current_with_passwd(passwd: &Path) -> Self {
        let uid = sys::getuid();
        let name = std::fs::read_to_string(passwd)
            .ok()
            .and_then(|text| user_name(&text, uid));
        Self::new(uid, sys::getgid(), name)
    }

    /// Whether the caller is root on the host.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// The name, or the uid as text when there is no name.
    pub(crate) fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.uid.to_string())
    }
}

/// The first name with `uid` in passwd-format text.
fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?.parse::<u32>().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// Where the subordinate id files are.
///
/// ```
/// use nucleus_idmap::SubIdPaths;
/// assert_eq!(SubIdPaths::default().subuid, std::path::Path::new("/etc/subuid"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubIdPaths {
    /// The subuid file, `/etc/subuid` by default.
    pub subuid: PathBuf,
    /// The subgid file, `/etc/subgid` by default.
    pub subgid: PathBuf,
}

impl Default for SubIdPaths {
    fn default() -> Self {
        Self {
            subuid: PathBuf::from("/etc/subuid"),
            subgid: PathBuf::from("/etc/subgid"),
        }
    }
}

impl SubIdPaths {
    /// The files at these paths.
    pub fn new(subuid: impl Into<PathBuf>, subgid: impl Into<PathBuf>) -> Self {
        Self {
            subuid: subuid.into(),
            subgid: subgid.into(),
        }
    }
}

/// One line of a subuid/subgid file: `user` owns host ids `start..start+count`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubIdRange {
    /// A user name or a numeric uid, as written in the file.
    pub user: String,
    /// First host id of the range.
    pub start: u32,
    /// Number of ids.
    pub count: u32,
}

impl SubIdRange {
    /// Whether this entry belongs to `caller` (by name or by numeric uid).
    pub fn belongs_to(&self, caller: &Caller) -> bool {
        caller.name.as_deref() == Some(self.user.as_str())
            || self.user.parse::<u32>().ok() == Some(caller.uid)
    }
}

/// Parses the text of a subuid/subgid file: `name-or-uid:start:count` per
/// line; blank lines and lines starting with `#` are skipped.
///
/// ```
/// let ranges = nucleus_idmap::parse_subid("# users\nalice:100000:65536\n").unwrap();
/// assert_eq!(ranges[0].user, "alice");
/// assert_eq!(ranges[0].start, 100000);
/// assert!(nucleus_idmap::parse_subid("alice:100000\n").is_err());
/// ```
pub fn parse_subid(text: &str) -> Result<Vec<SubIdRange>, IdmapError> {
    let mut ranges = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |reason| IdmapError::ParseSubid {
            path: None,
            line: i + 1,
            reason,
        };
        let mut fields = line.split(':');
        let (Some(user), Some(start), Some(count), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(err("expected name-or-uid:start:count"));
        };
        if user.is_empty() {
            return Err(err("the user name is empty"));
        }
        let start = start
            .parse::<u32>()
            .map_err(|_| err("the start is not a number"))?;
        let count = count
            .parse::<u32>()
            .map_err(|_| err("the count is not a number"))?;
        if count == 0 {
            return Err(err("the count is 0"));
        }
        if u64::from(start) + u64::from(count) > u64::from(u32::MAX) {
            return Err(err("the range runs past the largest id"));
        }
        ranges.push(SubIdRange {
            user: user.to_owned(),
            start,
            count,
        });
    }
    Ok(ranges)
}

/// The caller's first range in the file at `path`; `None` when the file
/// does not exist or has no entry for the caller.
pub(crate) fn find_range(path: &Path, caller: &Caller) -> Result<Option<SubIdRange>, IdmapError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(IdmapError::ReadSubid {
                path: path.to_owned(),
                source,
            })
        }
    };
    let ranges = parse_subid(&text).map_err(|e| match e {
        IdmapError::ParseSubid { line, reason, .. } => IdmapError::ParseSubid {
            path: Some(path.to_owned()),
            line,
            reason,
        },
        other => other,
    })?;
    Ok(ranges.into_iter().find(|r| r.belongs_to(caller)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_skips_comments() {
        let text = "\n# comment\nalice:100000:65536\n  1001:165536:65536  \n";
        let r = parse_subid(text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1],
            SubIdRange {
                user: "1001".into(),
                start: 165536,
                count: 65536
            }
        );
    }

    #[test]
    fn bad_lines_name_their_number() {
        for (text, line) in [
            ("alice:1:2\nbob:1\n", 2),
            ("# x\n\nalice:x:2\n", 3),
            ("alice:1:y\n", 1),
            ("alice:1:0\n", 1),
            (":1:2\n", 1),
            ("alice:1:2:3\n", 1),
            ("alice:4294967295:1\n", 1),
        ] {
            match parse_subid(text) {
                Err(IdmapError::ParseSubid { line: l, path, .. }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert!(path.is_none());
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let msg = parse_subid("bob:1\n").unwrap_err().to_string();
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn matches_by_name_or_uid() {
        let alice = Caller::new(1000, 1000, Some("alice".into()));
        let r = |user: &str| SubIdRange {
            user: user.into(),
            start: 1,
            count: 1,
        };
        assert!(r("alice").belongs_to(&alice));
        assert!(r("1000").belongs_to(&alice));
        assert!(!r("bob").belongs_to(&alice));
        assert!(r("1000").belongs_to(&Caller::new(1000, 1000, None)));
    }

    #[test]
    fn finds_range_in_file() {
        let dir = std::env::temp_dir().join(format!("nucleus-idmap-subid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("subuid");
        std::fs::write(&path, "bob:1:2\nalice:100000:65536\nalice:300000:10\n").unwrap();
        let alice = Caller::new(1000, 1000, Some("alice".into()));
        let found = find_range(&path, &alice).unwrap().unwrap();
        assert_eq!((found.start, found.count), (100000, 65536));
        assert!(find_range(&dir.join("missing"), &alice).unwrap().is_none());
        std::fs::write(&path, "alice:1\n").unwrap();
        let err = find_range(&path, &alice).unwrap_err();
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn user_name_from_passwd() {
        let text = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
        assert_eq!(user_name(text, 65534).as_deref(), Some("nobody"));
        assert_eq!(user_name(text, 0).as_deref(), Some("root"));
        assert_eq!(user_name(text, 5), None);
        assert_eq!(user_name("broken\n::", 0), None);
    }
}
