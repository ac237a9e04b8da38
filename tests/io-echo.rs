//! Many datagrams of varied sizes (1 byte up to `buffer_size`) from a plain std client come back
//! byte for byte, in order, through each backend.

mod io_support;

use io_support::*;
use tern::datapath::io::IoConfig;

#[test]
fn echo_of_varied_sizes_is_byte_exact() {
    for mode in backends() {
        let mut io = server("127.0.0.1:0", mode, IoConfig::default(), None);
        let c = client("127.0.0.1:0");
        let dst = io.local_addr();
        let mut sent = vec![0u8; 2048];
        let mut back = vec![0u8; 4096];
        let mut total = 0;
        for batch in 0..20 {
            let sizes: Vec<usize> = (0..25)
                .map(|k| match (batch * 25 + k) % 50 {
                    0 => 1,
                    1 => 2048,
                    n => (n * 97) % 2048 + 1,
                })
                .collect();
            for (k, &len) in sizes.iter().enumerate() {
                pattern(batch * 25 + k, len, &mut sent);
                c.send_to(&sent[..len], dst).unwrap();
            }
            assert_eq!(
                pump_echo(&mut io, sizes.len()),
                sizes.len(),
                "{mode}: delivered"
            );
            for (k, &len) in sizes.iter().enumerate() {
                let (n, from) = c.recv_from(&mut back).expect("echo arrives");
                assert_eq!(from, dst);
                pattern(batch * 25 + k, len, &mut sent);
                assert_eq!(
                    &back[..n],
                    &sent[..len],
                    "{mode}: datagram {k} of batch {batch}"
                );
                total += 1;
            }
        }
        // Reap the last send completions.
        io.run_once(std::time::Duration::from_millis(10), echo)
            .unwrap();
        let s = io.stats();
        assert_eq!(s.recv_packets, total, "{mode}: {s:?}");
        assert_eq!(s.send_packets, total, "{mode}: {s:?}");
        assert_eq!(s.send_errors, 0, "{mode}: {s:?}");
        assert_eq!(s.recv_truncated, 0, "{mode}: {s:?}");
    }
}
