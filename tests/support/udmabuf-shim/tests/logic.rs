//! The shim's udmabuf rules and mapping, tested as plain functions: `src/list.rs` and
//! `src/map.rs` are compiled into this test by path, without `src/lib.rs`, so this binary
//! never defines (and so never interposes) `open`, `ioctl`, `mmap` or `close`. The mapping
//! test maps real memfds with libc's own `mmap`.

#![allow(missing_docs, dead_code)]

#[path = "../src/list.rs"]
mod list;
#[path = "../src/map.rs"]
mod map;

use std::collections::BTreeMap;

use libc::{c_int, EBADFD, EINVAL};
use list::{
    check_count, plan, validate, CreateItem, Limits, MemfdFacts, Piece, Segment, PAGE_SIZE,
    UDMABUF_CREATE, UDMABUF_CREATE_LIST,
};

const PAGE: u64 = PAGE_SIZE;

/// Made-up memfds: fd -> (seals, size).
struct Facts(BTreeMap<c_int, (c_int, u64)>);

impl MemfdFacts for Facts {
    fn seals(&self, fd: c_int) -> Result<c_int, c_int> {
        self.0.get(&fd).map(|f| f.0).ok_or(libc::EBADF)
    }
    fn size(&self, fd: c_int) -> Result<u64, c_int> {
        self.0.get(&fd).map(|f| f.1).ok_or(libc::EBADF)
    }
}

const GOOD_SEALS: c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;

fn facts() -> Facts {
    let mut map = BTreeMap::new();
    map.insert(10, (GOOD_SEALS, 64 * PAGE));
    map.insert(11, (libc::F_SEAL_SHRINK, 8 * PAGE));
    // A memfd without the shrink seal, one sealed against writes, a file without seals.
    map.insert(12, (libc::F_SEAL_GROW, 8 * PAGE));
    map.insert(13, (GOOD_SEALS | libc::F_SEAL_WRITE, 8 * PAGE));
    Facts(map)
}

fn item(memfd: u32, offset: u64, size: u64) -> CreateItem {
    CreateItem {
        memfd,
        pad: 0,
        offset,
        size,
    }
}

#[test]
fn the_ioctl_numbers_are_the_kernel_headers() {
    // _IOW('u', 0x43, 8-byte head) and _IOW('u', 0x42, 24-byte struct udmabuf_create).
    assert_eq!(UDMABUF_CREATE_LIST, 0x4008_7543);
    assert_eq!(UDMABUF_CREATE, 0x4018_7542);
    assert_eq!(std::mem::size_of::<CreateItem>(), 24);
}

#[test]
fn the_limits_are_the_kernel_defaults_unless_the_variables_say_otherwise() {
    assert_eq!(Limits::from_vars(|_| None), Limits::KERNEL_DEFAULTS);
    assert_eq!(Limits::KERNEL_DEFAULTS.list, 1024);
    assert_eq!(Limits::KERNEL_DEFAULTS.size, 64 << 20);
    let set = Limits::from_vars(|name| match name {
        "VIOGPU_UDMABUF_LIST_LIMIT" => Some("16384".into()),
        "VIOGPU_UDMABUF_SIZE_LIMIT_MB" => Some("1024".into()),
        _ => None,
    });
    assert_eq!(
        set,
        Limits {
            list: 16384,
            size: 1 << 30
        }
    );
    // Garbage leaves the default.
    let bad = Limits::from_vars(|_| Some("lots".into()));
    assert_eq!(bad, Limits::KERNEL_DEFAULTS);
}

#[test]
fn the_count_is_checked_against_the_list_limit() {
    let limits = Limits {
        list: 4,
        size: 1 << 30,
    };
    assert_eq!(check_count(4, limits), Ok(()));
    assert_eq!(check_count(5, limits), Err(EINVAL));
}

#[test]
fn a_good_list_gives_its_pieces_in_order_and_its_size() {
    let items = [
        item(10, 5 * PAGE, 2 * PAGE),
        item(11, 0, PAGE),
        item(10, 0, 0),
        item(10, 0, 3 * PAGE),
    ];
    let (pieces, total) = validate(&items, Limits::KERNEL_DEFAULTS, &facts()).unwrap();
    assert_eq!(total, 6 * PAGE);
    assert_eq!(
        pieces,
        vec![
            Piece {
                memfd: 10,
                offset: 5 * PAGE,
                size: 2 * PAGE
            },
            Piece {
                memfd: 11,
                offset: 0,
                size: PAGE
            },
            Piece {
                memfd: 10,
                offset: 0,
                size: 3 * PAGE
            },
        ]
    );
}

#[test]
fn unaligned_ranges_are_refused() {
    let facts = facts();
    let limits = Limits::KERNEL_DEFAULTS;
    assert_eq!(
        validate(&[item(10, 100, PAGE)], limits, &facts),
        Err(EINVAL)
    );
    assert_eq!(
        validate(&[item(10, 0, PAGE + 1)], limits, &facts),
        Err(EINVAL)
    );
    // Alignment is checked before the fd: a bad fd with a bad size is EINVAL.
    assert_eq!(validate(&[item(99, 0, 100)], limits, &facts), Err(EINVAL));
}

#[test]
fn the_size_limit_and_an_empty_buffer_are_refused() {
    let facts = facts();
    let limits = Limits {
        list: 1024,
        size: 4 * PAGE,
    };
    assert_eq!(
        validate(&[item(10, 0, 4 * PAGE)], limits, &facts).map(|r| r.1),
        Ok(4 * PAGE)
    );
    assert_eq!(
        validate(
            &[item(10, 0, 3 * PAGE), item(10, 8 * PAGE, 2 * PAGE)],
            limits,
            &facts
        ),
        Err(EINVAL)
    );
    assert_eq!(validate(&[], limits, &facts), Err(EINVAL));
    assert_eq!(validate(&[item(10, 0, 0)], limits, &facts), Err(EINVAL));
}

#[test]
fn the_fds_must_be_memfds_sealed_against_shrinking_and_not_writing() {
    let facts = facts();
    let limits = Limits::KERNEL_DEFAULTS;
    assert_eq!(validate(&[item(99, 0, PAGE)], limits, &facts), Err(EBADFD));
    assert_eq!(validate(&[item(12, 0, PAGE)], limits, &facts), Err(EINVAL));
    assert_eq!(validate(&[item(13, 0, PAGE)], limits, &facts), Err(EINVAL));
    assert!(validate(&[item(11, 0, PAGE)], limits, &facts).is_ok());
}

#[test]
fn a_range_past_the_end_of_its_memfd_is_refused() {
    let facts = facts();
    let limits = Limits::KERNEL_DEFAULTS;
    assert!(validate(&[item(11, 7 * PAGE, PAGE)], limits, &facts).is_ok());
    assert_eq!(
        validate(&[item(11, 7 * PAGE, 2 * PAGE)], limits, &facts),
        Err(EINVAL)
    );
    assert_eq!(
        validate(&[item(11, u64::MAX - PAGE + 1, PAGE)], limits, &facts),
        Err(EINVAL)
    );
}

fn three_pieces() -> Vec<Piece> {
    vec![
        Piece {
            memfd: 10,
            offset: 5 * PAGE,
            size: 2 * PAGE,
        },
        Piece {
            memfd: 11,
            offset: 0,
            size: PAGE,
        },
        Piece {
            memfd: 10,
            offset: 0,
            size: 3 * PAGE,
        },
    ]
}

#[test]
fn mapping_the_whole_buffer_maps_every_piece_back_to_back() {
    let (len, segments) = plan(&three_pieces(), 6 * PAGE, 0, 6 * PAGE).unwrap();
    assert_eq!(len, 6 * PAGE);
    assert_eq!(
        segments,
        vec![
            Segment {
                at: 0,
                memfd: 10,
                file_offset: 5 * PAGE,
                len: 2 * PAGE
            },
            Segment {
                at: 2 * PAGE,
                memfd: 11,
                file_offset: 0,
                len: PAGE
            },
            Segment {
                at: 3 * PAGE,
                memfd: 10,
                file_offset: 0,
                len: 3 * PAGE
            },
        ]
    );
}

#[test]
fn a_partial_mapping_starts_and_ends_inside_pieces_and_rounds_up_to_pages() {
    // Pages 1..4 of the buffer: the second page of piece 0, piece 1, the first of piece 2;
    // a length of 2 pages and 1 byte is 3 pages.
    let (len, segments) = plan(&three_pieces(), 6 * PAGE, PAGE, 2 * PAGE + 1).unwrap();
    assert_eq!(len, 3 * PAGE);
    assert_eq!(
        segments,
        vec![
            Segment {
                at: 0,
                memfd: 10,
                file_offset: 6 * PAGE,
                len: PAGE
            },
            Segment {
                at: PAGE,
                memfd: 11,
                file_offset: 0,
                len: PAGE
            },
            Segment {
                at: 2 * PAGE,
                memfd: 10,
                file_offset: 0,
                len: PAGE
            },
        ]
    );
}

#[test]
fn mappings_past_the_end_unaligned_or_empty_are_refused() {
    let pieces = three_pieces();
    assert_eq!(plan(&pieces, 6 * PAGE, 0, 6 * PAGE + 1), Err(EINVAL));
    assert_eq!(plan(&pieces, 6 * PAGE, PAGE, 6 * PAGE), Err(EINVAL));
    assert_eq!(plan(&pieces, 6 * PAGE, 100, PAGE), Err(EINVAL));
    assert_eq!(plan(&pieces, 6 * PAGE, 0, 0), Err(EINVAL));
    assert_eq!(
        plan(&pieces, 6 * PAGE, u64::MAX - PAGE + 1, PAGE),
        Err(EINVAL)
    );
}

/// A sealed memfd of `pages` pages, page `i` filled with byte `i + 1`.
fn sealed_memfd(pages: u64) -> c_int {
    // SAFETY: memfd_create with a NUL-terminated name.
    let fd = unsafe {
        libc::memfd_create(
            c"logic-test".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    for page in 0..pages {
        let data = vec![(page + 1) as u8; PAGE as usize];
        // SAFETY: writes a live buffer to our memfd.
        let n = unsafe {
            libc::pwrite(
                fd,
                data.as_ptr().cast(),
                data.len(),
                (page * PAGE) as libc::off_t,
            )
        };
        assert_eq!(n, PAGE as isize);
    }
    // SAFETY: fcntl on our memfd.
    let sealed = unsafe {
        libc::fcntl(
            fd,
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW,
        )
    };
    assert_eq!(sealed, 0);
    fd
}

struct SystemFacts;

impl MemfdFacts for SystemFacts {
    fn seals(&self, fd: c_int) -> Result<c_int, c_int> {
        // SAFETY: reads the seals of an fd.
        let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
        if seals < 0 {
            Err(map::errno())
        } else {
            Ok(seals)
        }
    }
    fn size(&self, fd: c_int) -> Result<u64, c_int> {
        // SAFETY: lseek to the end reads the size.
        let size = unsafe { libc::lseek(fd, 0, libc::SEEK_END) };
        u64::try_from(size).map_err(|_| map::errno())
    }
}

#[test]
fn a_real_mapping_shows_the_memfd_ranges_concatenated_and_later_writes() {
    let a = sealed_memfd(8);
    let b = sealed_memfd(4);
    let items = [
        item(a as u32, 5 * PAGE, 2 * PAGE),
        item(b as u32, 3 * PAGE, PAGE),
        item(a as u32, 0, 3 * PAGE),
    ];
    let (pieces, total) = validate(&items, Limits::KERNEL_DEFAULTS, &SystemFacts).unwrap();
    let (len, segments) = plan(&pieces, total, 0, total).unwrap();
    // SAFETY: libc's own mmap/munmap; no MAP_FIXED, the segments lie inside `len` (plan).
    let base = unsafe {
        map::map_segments(
            &segments,
            len,
            std::ptr::null_mut(),
            libc::PROT_READ,
            libc::MAP_SHARED,
            libc::mmap,
            libc::munmap,
        )
    }
    .unwrap();
    // SAFETY: `len` readable bytes were just mapped at `base`.
    let view = unsafe { std::slice::from_raw_parts(base.cast::<u8>(), len as usize) };
    let first_byte_of_each_page: Vec<u8> = view.chunks(PAGE as usize).map(|p| p[0]).collect();
    // a's pages 5, 6, b's page 3, a's pages 0, 1, 2 (bytes are page index + 1).
    assert_eq!(first_byte_of_each_page, vec![6, 7, 4, 1, 2, 3]);
    assert!(view
        .chunks(PAGE as usize)
        .all(|p| p.iter().all(|&x| x == p[0])));
    // A write through the memfd (the guest writing its RAM) shows in the mapping.
    let new = [0xABu8; 16];
    // SAFETY: writes a live buffer to our memfd.
    let n = unsafe {
        libc::pwrite(
            b,
            new.as_ptr().cast(),
            new.len(),
            (3 * PAGE + 100) as libc::off_t,
        )
    };
    assert_eq!(n, 16);
    assert_eq!(
        &view[2 * PAGE as usize + 100..2 * PAGE as usize + 116],
        &new
    );
    // SAFETY: unmaps the mapping made above; `view` is not used after.
    assert_eq!(unsafe { libc::munmap(base, len as usize) }, 0);

    // A mapping from page 2 on, one page long: b's page 3.
    let (len, segments) = plan(&pieces, total, 2 * PAGE, 10).unwrap();
    // SAFETY: as above.
    let base = unsafe {
        map::map_segments(
            &segments,
            len,
            std::ptr::null_mut(),
            libc::PROT_READ,
            libc::MAP_SHARED,
            libc::mmap,
            libc::munmap,
        )
    }
    .unwrap();
    // SAFETY: one page was mapped at `base`.
    let page = unsafe { std::slice::from_raw_parts(base.cast::<u8>(), PAGE as usize) };
    assert_eq!(page[0], 4);
    assert_eq!(page[100], 0xAB);
    // SAFETY: unmaps the mapping made above.
    assert_eq!(unsafe { libc::munmap(base, len as usize) }, 0);
    for fd in [a, b] {
        // SAFETY: closes our memfds.
        unsafe { libc::close(fd) };
    }
}

#[test]
fn a_memfd_without_the_shrink_seal_is_refused_by_the_real_checks() {
    // SAFETY: memfd_create with a NUL-terminated name.
    let fd = unsafe { libc::memfd_create(c"logic-test-unsealed".as_ptr(), libc::MFD_CLOEXEC) };
    // SAFETY: sizes our memfd.
    assert_eq!(unsafe { libc::ftruncate(fd, PAGE as libc::off_t) }, 0);
    assert_eq!(
        validate(
            &[item(fd as u32, 0, PAGE)],
            Limits::KERNEL_DEFAULTS,
            &SystemFacts
        ),
        Err(EINVAL)
    );
    // A pipe is no memfd.
    let mut pipe = [0; 2];
    // SAFETY: pipe writes two fds.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    assert_eq!(
        validate(
            &[item(pipe[0] as u32, 0, PAGE)],
            Limits::KERNEL_DEFAULTS,
            &SystemFacts
        ),
        Err(EBADFD)
    );
    for fd in [fd, pipe[0], pipe[1]] {
        // SAFETY: closes our fds.
        unsafe { libc::close(fd) };
    }
}
