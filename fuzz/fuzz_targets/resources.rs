//! Fuzzes the translated CM_RESOURCE_LIST reader (`viogpudo::adapter::resources`): `parse`
//! over a byte slice, and `list_len`, which walks a list through a raw pointer, over the
//! same bytes followed by enough zeros for any list it could walk (so it never reads outside
//! the buffer, and ASan would see it if it did). The two must agree: a list `parse` accepts
//! spans `list_len` bytes, and a list whose span fits in the input parses to the same result
//! from exactly that many bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use viogpu_common::Error;
use viogpudo::adapter::resources::{list_len, parse, PARTIAL_LEN};

/// Most descriptors either function walks (full and partial), and so the furthest byte a
/// `list_len` that gives up at that bound can read: the 4-byte count, 256 full headers of 16
/// bytes and 256 partial descriptors.
const MAX_DESCRIPTORS: usize = 256;
const MAX_SPAN: usize = 4 + MAX_DESCRIPTORS * 16 + MAX_DESCRIPTORS * PARTIAL_LEN;

fuzz_target!(|data: &[u8]| {
    let parsed = parse(data);
    let mut padded = data.to_vec();
    padded.resize(data.len() + MAX_SPAN + 16, 0);
    // SAFETY: whatever the counts say, list_len reads at most MAX_SPAN bytes (it stops at 256
    // descriptors), and `padded` holds that many past any offset the input's counts reach.
    let span = unsafe { list_len(padded.as_ptr()) };
    if let Some(span) = span {
        assert!(span <= MAX_SPAN, "span {span}");
    }
    match &parsed {
        Ok(resources) => {
            let found = resources.memory.len() + resources.interrupts.len() + resources.ports;
            assert!(found <= MAX_DESCRIPTORS);
            let span = span.expect("a list parse accepts has a length");
            assert!(
                span <= data.len(),
                "span {span} beyond {} bytes",
                data.len()
            );
            assert_eq!(parse(&data[..span]).as_ref(), Ok(resources));
            // Each descriptor is 20 bytes: the list cannot describe more than it holds.
            assert!(found * PARTIAL_LEN <= span);
        }
        Err(Error::NoMemory) => {}
        Err(e) => {
            assert!(
                matches!(e, Error::OutOfBounds | Error::InvalidArgument),
                "{e:?}"
            );
            if let Some(span) = span {
                // A list whose counts are sane fails only when the bytes end too early.
                assert!(
                    span > data.len(),
                    "span {span} fits in {} bytes: {e:?}",
                    data.len()
                );
                assert_eq!(*e, Error::OutOfBounds);
            }
        }
    }
});
