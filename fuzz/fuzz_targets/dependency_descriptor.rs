#![no_main]
use libfuzzer_sys::fuzz_target;

// The first byte splits the input into two descriptors: the second is placed by whatever
// structure the first left.
fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = rest.split_at(usize::from(split).min(rest.len()));
    let mut structure = tern::wire::dd::Structure::default();
    let _ = tern::wire::dd::parse(a, &mut structure);
    let _ = tern::wire::dd::parse(b, &mut structure);
});
