//! `tern completions <shell>` prints a completion script (clap_complete) that the shell accepts
//! and that completes Tern's own subcommands; an unknown shell is a usage error.

use std::process::Command;

const TERN: &str = env!("CARGO_BIN_EXE_tern");

fn script(shell: &str) -> String {
    let out = Command::new(TERN)
        .args(["completions", shell])
        .output()
        .expect("tern runs");
    assert!(out.status.success(), "{shell}: {:?}", out.status);
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn bash_completes_subcommands() {
    let s = script("bash");
    let path = std::env::temp_dir().join(format!("tern-completion-{}.bash", std::process::id()));
    std::fs::write(&path, &s).unwrap();
    // Load it and ask for the words after `tern `, as bash would on TAB.
    let probe = format!(
        "source {}; COMP_WORDS=(tern ''); COMP_CWORD=1; COMP_LINE='tern '; COMP_POINT=5; \
         _tern tern '' tern; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        path.display()
    );
    let out = Command::new("bash")
        .args(["-c", &probe])
        .output()
        .expect("bash");
    let _ = std::fs::remove_file(&path);
    let words = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for w in ["serve", "check-config", "token", "version", "completions"] {
        assert!(words.lines().any(|l| l == w), "{w} in {words}");
    }
}

#[test]
fn other_shells_and_a_bad_one() {
    assert!(script("zsh").contains("#compdef tern"));
    assert!(script("fish").contains("complete -c tern"));
    let out = Command::new(TERN)
        .args(["completions", "cmd.exe"])
        .output()
        .expect("tern runs");
    assert_eq!(out.status.code(), Some(2));
}
