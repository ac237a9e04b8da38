//! The man pages the `.deb` installs (`man/*.1`, listed in Cargo.toml's
//! `[package.metadata.deb]` assets) are exactly what `tern man DIR` (clap_mangen) writes, so
//! they cannot fall behind the command line; and `man` renders them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const TERN: &str = env!("CARGO_BIN_EXE_tern");
const MAN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/man");

fn pages(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn the_committed_man_pages_are_the_generated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(TERN)
        .arg("man")
        .arg(dir.path())
        .output()
        .expect("tern runs");
    assert!(out.status.success(), "{out:?}");
    let (generated, committed) = (pages(dir.path()), pages(Path::new(MAN_DIR)));
    let names: Vec<&String> = generated.keys().collect();
    assert_eq!(
        names,
        [
            "tern-check-config.1",
            "tern-completions.1",
            "tern-serve.1",
            "tern-token.1",
            "tern-version.1",
            "tern.1"
        ]
    );
    assert!(
        generated == committed,
        "man/ is stale: run `cargo run -- man man/`"
    );
    let page = String::from_utf8_lossy(&committed["tern-token.1"]);
    assert!(page.contains(".TH tern-token 1"), "{page}");
    for option in ["room", "publish", "ttl", "TERN_CONFIG"] {
        assert!(page.contains(option), "{option} in tern-token.1");
    }
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    assert!(manifest.contains(r#"["man/*.1", "usr/share/man/man1/", "644"]"#));
}

#[test]
fn man_renders_the_pages() {
    for (page, want) in [("tern.1", "tern-serve(1)"), ("tern-serve.1", "--config")] {
        let out = Command::new("man")
            .args(["-l", &format!("{MAN_DIR}/{page}")])
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .expect("man(1) is installed (test-all.sh installs man-db)");
        let text = String::from_utf8_lossy(&out.stdout).replace("\u{2010}", "-");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(want), "{want} in {page}:\n{text}");
    }
}
