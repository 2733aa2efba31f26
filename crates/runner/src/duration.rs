//! Durations as users write them: `30s`, `500ms`, `2m`, `1h`, `1.5s`.

use crate::RunError;
use std::time::Duration;

/// Parses `30s`, `500ms`, `2m`, `1h` or a bare number of seconds.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(nucleus_runner::parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
/// assert_eq!(nucleus_runner::parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert!(nucleus_runner::parse_duration("0s").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, RunError> {
    // One parser for every duration of the project: the cgroup crate's.
    nucleus_cgroup::parse_duration(text).map_err(|_| RunError::InvalidDuration {
        text: text.to_owned(),
    })
}

/// Formats a duration the way [`parse_duration`] reads it.
pub(crate) fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_secs_f64() * 1000.0)
    }
}

/// serde adapter for `Option<Duration>` as a string like `"30s"`.
pub(crate) mod opt_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format_duration(*d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Seconds(f64),
        }
        match Option::<Form>::deserialize(d)? {
            None => Ok(None),
            Some(Form::Text(t)) => super::parse_duration(&t)
                .map(Some)
                .map_err(serde::de::Error::custom),
            Some(Form::Seconds(s)) => super::parse_duration(&s.to_string())
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn round_trip() {
        for text in ["30s", "1500ms"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d);
        }
    }
}
