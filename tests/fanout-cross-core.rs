//! One publisher, 50 subscribers spread over two workers: the other worker's 25 get the packets
//! through the lock-free ring, byte for byte and in order.

mod common;

use tern::datapath::IoMode;

#[test]
fn fifty_subscribers_over_two_workers_get_every_packet() {
    let c = common::fanout::run(2, IoMode::Uring);
    assert_eq!(c.media_out, 50 * u64::from(common::fanout::PACKETS));
    assert_eq!(
        c.ring_in,
        u64::from(common::fanout::PACKETS),
        "one ring copy per packet for worker 1"
    );
    assert_eq!(c.ring_full + c.pool_empty, 0);
}
