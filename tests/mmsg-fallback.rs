//! The fan-out test with `io = "mmsg"`: the recvmmsg/sendmmsg backend relays the same way.

mod common;

use tern::datapath::IoMode;

#[test]
fn fan_out_over_recvmmsg_and_sendmmsg() {
    let c = common::fanout::run(2, IoMode::Mmsg);
    assert_eq!(c.media_out, 50 * u64::from(common::fanout::PACKETS));
}
