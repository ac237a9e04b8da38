//! `systemd/tern.toml.example` documents the whole schema: every field of `Config` appears in it
//! (optional ones as a commented `# key = value` line), every value it sets is the default (the
//! HS256 secret file aside), and its commented examples parse too.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use tern::config::{ClusterConfig, Config, Workers};

fn example() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/tern.toml.example"
    ))
    .unwrap()
}

/// Dotted keys of every leaf in a TOML table.
fn keys(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => keys(inner, &name, out),
            _ => {
                out.insert(name);
            }
        }
    }
}

/// A config with every optional field set, so serializing it names the whole schema.
fn full_config() -> Config {
    let mut config = Config::default();
    config.media.advertised_address = Some("203.0.113.7".parse().unwrap());
    config.media.workers = Workers::Cores(vec![0]);
    config.media.interface = Some("eth0".into());
    config.auth.jwt_secret_file = Some(PathBuf::from("/s"));
    config.auth.public_key_files = vec![PathBuf::from("/k")];
    config.auth.webhook_url = Some("https://example.com".into());
    config.auth.admin_token_file = Some(PathBuf::from("/a"));
    config.media.dtls_certificate_file = Some(PathBuf::from("/c"));
    config.media.dtls_key_file = Some(PathBuf::from("/k"));
    config.cluster = Some(ClusterConfig {
        etcd: vec!["http://10.0.0.5:2379".into()],
        node_id: "a".into(),
        advertise_http: Some("http://10.0.0.11:8080".into()),
        advertise_media: Some("10.0.0.11".parse().unwrap()),
        lease_ttl: Duration::from_secs(3),
        cluster_secret_file: PathBuf::from("/c"),
        prefix: "/tern".into(),
        pull_linger: Duration::from_secs(10),
        max_sessions: 0,
    });
    config.media.tcp_port_base = Some(443);
    config
}

/// The example with its `# key = value` lines and `# [table]` headers uncommented.
fn uncommented(text: &str) -> String {
    text.lines()
        .map(|line| {
            let rest = line.strip_prefix("# ").unwrap_or(line);
            if rest.starts_with('[') && rest.ends_with(']') && rest != line {
                return rest;
            }
            let is_key = rest.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            });
            if is_key {
                rest
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn example_lists_every_field_of_the_schema() {
    let mut schema = BTreeSet::new();
    keys(
        &toml::Table::try_from(full_config()).unwrap(),
        "",
        &mut schema,
    );
    assert!(schema.contains("media.port_base") && schema.contains("auth.webhook_url"));

    let text = uncommented(&example());
    let table: toml::Table = toml::from_str(&text).unwrap();
    let mut listed = BTreeSet::new();
    keys(&table, "", &mut listed);

    let missing: Vec<_> = schema.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "fields missing from tern.toml.example: {missing:?}"
    );
    let unknown: Vec<_> = listed.difference(&schema).collect();
    assert!(
        unknown.is_empty(),
        "example has fields the schema lacks: {unknown:?}"
    );
    // The commented examples are valid values too.
    let _: Config = toml::from_str(&text).unwrap();
}

#[test]
fn example_values_are_the_defaults() {
    let parsed: Config = toml::from_str(&example()).unwrap();
    let mut expected = Config::default();
    expected.auth.jwt_secret_file = Some(PathBuf::from("/etc/tern/jwt-secret"));
    assert_eq!(parsed, expected);
    assert_eq!(parsed.drain_timeout(), Duration::from_secs(30));
}
