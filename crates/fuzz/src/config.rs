//! The `--config` file: an Envelope in TOML or JSON.

use crate::{text, Target};
use nucleus_runner::Envelope;
use std::path::Path;
use std::time::Duration;

/// `nucleus_runner::Envelope::parse_config` as TOML, then `validate`; what parses prints
/// back (as `--print-config` does) to the same Envelope.
pub(crate) const CONFIG_TOML: Target = Target {
    name: "config-toml",
    entry: "nucleus_runner::Envelope::parse_config (config.toml)",
    run: config_toml,
    seeds: toml_seeds,
};

/// `nucleus_runner::Envelope::parse_config` as JSON, then `validate`; what parses prints
/// back to the same Envelope.
pub(crate) const CONFIG_JSON: Target = Target {
    name: "config-json",
    entry: "nucleus_runner::Envelope::parse_config (config.json)",
    run: config_json,
    seeds: json_seeds,
};

fn config_toml(bytes: &[u8]) -> bool {
    let Ok(env) = Envelope::parse_config(&text(bytes), Path::new("config.toml")) else {
        return false;
    };
    let printed = toml::to_string(&env).expect("a parsed Envelope prints as TOML");
    let again = Envelope::parse_config(&printed, Path::new("config.toml"))
        .expect("a printed Envelope parses");
    assert_eq!(again, env, "the Envelope changed through TOML:\n{printed}");
    let _ = env.validate();
    true
}

fn config_json(bytes: &[u8]) -> bool {
    let Ok(env) = Envelope::parse_config(&text(bytes), Path::new("config.json")) else {
        return false;
    };
    let printed = serde_json::to_string(&env).expect("a parsed Envelope prints as JSON");
    let again = Envelope::parse_config(&printed, Path::new("config.json"))
        .expect("a printed Envelope parses");
    assert_eq!(again, env, "the Envelope changed through JSON:\n{printed}");
    let _ = env.validate();
    true
}

/// `--print-config` of a run with most flags, of a wasm run, the default Envelope and a
/// built one.
pub(crate) fn envelopes() -> Vec<Envelope> {
    let mut out = Vec::new();
    for text in [
        include_str!("../seeds/config-full.toml"),
        include_str!("../seeds/config-wasm.toml"),
    ] {
        out.extend(Envelope::parse_config(text, Path::new("config.toml")).ok());
    }
    out.push(Envelope::default());
    let built = Envelope::builder(["/bin/echo", "hi"])
        .ro_bind("/usr/share", "/data")
        .env("LANG", "C.UTF-8")
        .hostname("box")
        .timeout(Duration::from_millis(1500))
        .build();
    out.extend(built.ok());
    out
}

fn toml_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = envelopes()
        .iter()
        .filter_map(|env| toml::to_string(env).ok())
        .map(String::into_bytes)
        .collect();
    seeds.push(b"command = [\"/bin/true\"]\ntimeout = 2.5\n".to_vec());
    seeds
}

fn json_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = envelopes()
        .iter()
        .filter_map(|env| serde_json::to_string_pretty(env).ok())
        .map(String::into_bytes)
        .collect();
    seeds.push(
        br#"{"command": ["/bin/true"], "timeout": "30s", "limits": {"memory": "512M"}}"#.to_vec(),
    );
    seeds
}
