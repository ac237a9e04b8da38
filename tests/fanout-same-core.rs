//! One publisher, 50 subscribers, one worker: every subscriber decrypts every payload byte for
//! byte, in order, none lost at a moderate rate.

mod common;

use tern::datapath::IoMode;

#[test]
fn fifty_subscribers_on_one_worker_get_every_packet() {
    let c = common::fanout::run(1, IoMode::Uring);
    assert_eq!(c.media_out, 50 * u64::from(common::fanout::PACKETS));
    assert_eq!(c.ring_in, 0, "one worker: nothing crosses a ring");
}
