//! The udmabuf ABI and its rules, as plain functions: the ioctl numbers and structures of
//! `linux/udmabuf.h`, the checks the kernel's `udmabuf_create` makes on a list of memfd
//! ranges (in its order, with its error numbers), and the plan that maps a range of the
//! resulting buffer as pieces of those memfds. Nothing here calls the system except through
//! the [`MemfdFacts`] it is given, so tests run it on made-up facts.

use libc::{c_int, EBADFD, EINVAL};

/// The page size the kernel aligns udmabuf ranges to (x86_64).
pub const PAGE_SIZE: u64 = 4096;

/// `struct udmabuf_create`: one memfd range (`UDMABUF_CREATE`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOne {
    /// The memfd.
    pub memfd: u32,
    /// `UDMABUF_FLAGS_CLOEXEC` or 0.
    pub flags: u32,
    /// Byte offset of the range in the memfd (page aligned).
    pub offset: u64,
    /// Byte length of the range (page aligned).
    pub size: u64,
}

/// `struct udmabuf_create_list`'s head; `count` items of [`CreateItem`] follow it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateListHead {
    /// `UDMABUF_FLAGS_CLOEXEC` or 0.
    pub flags: u32,
    /// Number of items after the head.
    pub count: u32,
}

/// `struct udmabuf_create_item`: one memfd range of a list.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateItem {
    /// The memfd.
    pub memfd: u32,
    /// Padding (`__pad`).
    pub pad: u32,
    /// Byte offset of the range in the memfd (page aligned).
    pub offset: u64,
    /// Byte length of the range (page aligned).
    pub size: u64,
}

/// The new dma-buf fd gets `O_CLOEXEC`.
pub const UDMABUF_FLAGS_CLOEXEC: u32 = 0x01;

/// `_IOW(ty, nr, size)` of the kernel's ioctl encoding (x86_64: write = 1 in bits 30-31).
const fn iow(ty: u8, nr: u8, size: usize) -> u64 {
    (1 << 30) | ((size as u64) << 16) | ((ty as u64) << 8) | nr as u64
}

/// `UDMABUF_CREATE`: `_IOW('u', 0x42, struct udmabuf_create)`.
pub const UDMABUF_CREATE: u64 = iow(b'u', 0x42, std::mem::size_of::<CreateOne>());
/// `UDMABUF_CREATE_LIST`: `_IOW('u', 0x43, struct udmabuf_create_list)` (the head only:
/// the flexible array does not count in the size).
pub const UDMABUF_CREATE_LIST: u64 = iow(b'u', 0x43, std::mem::size_of::<CreateListHead>());

/// The kernel module's limits (`list_limit`, `size_limit_mb` module parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most items in one `UDMABUF_CREATE_LIST` (kernel default 1024).
    pub list: u32,
    /// Most bytes in one buffer (kernel default 64 MiB).
    pub size: u64,
}

impl Limits {
    /// The kernel's defaults.
    pub const KERNEL_DEFAULTS: Limits = Limits {
        list: 1024,
        size: 64 << 20,
    };

    /// The defaults, overridden by `VIOGPU_UDMABUF_LIST_LIMIT` and
    /// `VIOGPU_UDMABUF_SIZE_LIMIT_MB` (as an administrator would set the module parameters)
    /// when `var` has them as decimal numbers.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Limits {
        let mut limits = Limits::KERNEL_DEFAULTS;
        if let Some(list) = var("VIOGPU_UDMABUF_LIST_LIMIT").and_then(|v| v.trim().parse().ok()) {
            limits.list = list;
        }
        if let Some(mb) = var("VIOGPU_UDMABUF_SIZE_LIMIT_MB")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .and_then(|mb| mb.checked_mul(1 << 20))
        {
            limits.size = mb;
        }
        limits
    }
}

/// What the checks need to know about a memfd (the system answers in the shim, tests make
/// them up).
pub trait MemfdFacts {
    /// `fcntl(fd, F_GET_SEALS)`: the seals, or the errno (`EBADF` for no such fd, `EINVAL`
    /// for a file that is not a memfd).
    fn seals(&self, fd: c_int) -> Result<c_int, c_int>;
    /// The file's size in bytes, or the errno.
    fn size(&self, fd: c_int) -> Result<u64, c_int>;
}

/// One memfd range of a buffer, in buffer order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The memfd.
    pub memfd: c_int,
    /// Byte offset in the memfd.
    pub offset: u64,
    /// Byte length.
    pub size: u64,
}

/// The count check `UDMABUF_CREATE_LIST` makes before it reads the items: `EINVAL` past the
/// list limit.
pub fn check_count(count: u32, limits: Limits) -> Result<(), c_int> {
    if count > limits.list {
        Err(EINVAL)
    } else {
        Ok(())
    }
}

/// The kernel's checks of a list, in its order: every offset and size page aligned and the
/// running total within the size limit (`EINVAL`), a total of at least one page (`EINVAL`),
/// then per item a memfd (`EBADFD` for a bad fd or a file without seals), sealed against
/// shrinking and not against writing (`EINVAL`), and the range inside the file (`EINVAL`, as
/// the kernel's page lookup past the end). Returns the pieces and the buffer's size.
pub fn validate(
    items: &[CreateItem],
    limits: Limits,
    facts: &impl MemfdFacts,
) -> Result<(Vec<Piece>, u64), c_int> {
    let mut total: u64 = 0;
    for item in items {
        if !item.offset.is_multiple_of(PAGE_SIZE) || !item.size.is_multiple_of(PAGE_SIZE) {
            return Err(EINVAL);
        }
        total = total.checked_add(item.size).ok_or(EINVAL)?;
        if total > limits.size {
            return Err(EINVAL);
        }
    }
    if total == 0 {
        return Err(EINVAL);
    }
    let mut pieces = Vec::with_capacity(items.len());
    for item in items {
        let fd = c_int::try_from(item.memfd).map_err(|_| EBADFD)?;
        let seals = facts.seals(fd).map_err(|_| EBADFD)?;
        if seals & libc::F_SEAL_SHRINK == 0 || seals & libc::F_SEAL_WRITE != 0 {
            return Err(EINVAL);
        }
        let file_size = facts.size(fd).map_err(|_| EBADFD)?;
        let end = item.offset.checked_add(item.size).ok_or(EINVAL)?;
        if end > file_size {
            return Err(EINVAL);
        }
        // Empty items are legal (they add no page); they map nothing.
        if item.size > 0 {
            pieces.push(Piece {
                memfd: fd,
                offset: item.offset,
                size: item.size,
            });
        }
    }
    Ok((pieces, total))
}

/// One `mmap` of a buffer mapping: `len` bytes at byte `at` of the mapping come from
/// `memfd` at `file_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Byte offset in the mapping.
    pub at: u64,
    /// The memfd.
    pub memfd: c_int,
    /// Byte offset in the memfd.
    pub file_offset: u64,
    /// Byte length (whole pages).
    pub len: u64,
}

/// What mapping `len` bytes of a buffer of `total` bytes made of `pieces`, from byte
/// `offset` of it, takes: the length rounded up to pages and the segments. `EINVAL` as the
/// kernel's dma-buf mmap: an unaligned offset, no length, or pages past the buffer's end.
pub fn plan(
    pieces: &[Piece],
    total: u64,
    offset: u64,
    len: u64,
) -> Result<(u64, Vec<Segment>), c_int> {
    if !offset.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(EINVAL);
    }
    let rounded = len
        .checked_add(PAGE_SIZE - 1)
        .map(|l| l / PAGE_SIZE * PAGE_SIZE)
        .ok_or(EINVAL)?;
    let end = offset.checked_add(rounded).ok_or(EINVAL)?;
    if end > total {
        return Err(EINVAL);
    }
    let mut segments = Vec::new();
    let mut piece_start = 0u64;
    for piece in pieces {
        let piece_end = piece_start + piece.size;
        let from = offset.max(piece_start);
        let to = end.min(piece_end);
        if from < to {
            segments.push(Segment {
                at: from - offset,
                memfd: piece.memfd,
                file_offset: piece.offset + (from - piece_start),
                len: to - from,
            });
        }
        piece_start = piece_end;
    }
    Ok((rounded, segments))
}
