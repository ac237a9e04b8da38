//! Protect and unprotect never touch the heap: a counting global allocator watches this thread
//! while packets of every profile, new SSRCs included, go through a context.

mod counting_alloc;

use counting_alloc::allocations;

use tern::srtp::{Profile, SrtpContext};

#[test]
fn protect_and_unprotect_do_not_allocate() {
    for p in Profile::ALL {
        let key = vec![5u8; p.key_len()];
        let salt = vec![6u8; p.salt_len()];
        let mut tx = SrtpContext::new(p, &key, &salt).unwrap();
        let mut rx = SrtpContext::new(p, &key, &salt).unwrap();
        let mut buf = [0u8; 1500];
        let mut rtcp = [0u8; 200];

        let before = allocations();
        for i in 0..20_000u32 {
            // Eight SSRCs, so new-SSRC insertion is inside the measured loop too.
            let ssrc = 0x1000 + (i % 8);
            let seq = (i / 8) as u16;
            buf[0] = 0x80;
            buf[1] = 96;
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            buf[4..8].copy_from_slice(&i.to_be_bytes());
            buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
            buf[12..1200].fill(i as u8);
            let n = tx.protect_rtp(&mut buf, 1200).unwrap();
            let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
            assert_eq!(m, 1200);
            assert!(buf[12..1200].iter().all(|&b| b == i as u8));

            if i % 16 == 0 {
                rtcp[..4].copy_from_slice(&[0x81, 201, 0, 7]);
                rtcp[4..8].copy_from_slice(&ssrc.to_be_bytes());
                let n = tx.protect_rtcp(&mut rtcp, 32).unwrap();
                assert_eq!(rx.unprotect_rtcp(&mut rtcp[..n]).unwrap(), 32);
            }
        }
        let made = allocations() - before;
        assert_eq!(
            made, 0,
            "{p}: {made} heap allocations in 20,000 protect+unprotect round trips"
        );
    }
}

#[test]
fn the_counter_sees_allocations() {
    // The test above can fail: an allocation on this thread is counted.
    let before = allocations();
    let v = std::hint::black_box(vec![1u8; 64]);
    assert!(allocations() > before);
    drop(v);
}
