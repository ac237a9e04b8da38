//! `IoMode` parses its three names and rejects anything else with a message naming them.

use tern::datapath::io::IoMode;

#[test]
fn bogus_mode_is_rejected_with_the_allowed_values() {
    let err = "bogus".parse::<IoMode>().unwrap_err().to_string();
    for name in ["bogus", "auto", "uring", "mmsg"] {
        assert!(err.contains(name), "{err:?} should mention {name}");
    }
    assert_eq!("uring".parse::<IoMode>().unwrap(), IoMode::Uring);
    assert_eq!("mmsg".parse::<IoMode>().unwrap().to_string(), "mmsg");
    assert_eq!(IoMode::default(), IoMode::Auto);
}
