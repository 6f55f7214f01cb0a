//! A user-space stand-in for the Linux kernel's udmabuf driver (`/dev/udmabuf`), loaded into
//! QEMU with `LD_PRELOAD` so `-device virtio-gpu-pci,blob=true` works on a host whose kernel
//! has no udmabuf (QEMU 7.2 refuses `blob=true` unless `/dev/udmabuf` opens, and needs it to
//! see a blob resource made of several guest ranges as one contiguous mapping).
//!
//! What it emulates, by interposing libc's functions:
//! - `open`/`open64`/`openat`/`openat64` (and glibc's fortified `__open_2` family) of exactly
//!   `/dev/udmabuf`: a real placeholder fd (an empty memfd, `O_CLOEXEC` honoured) that the shim
//!   records as a udmabuf device.
//! - `ioctl(device, UDMABUF_CREATE_LIST | UDMABUF_CREATE, ...)`: the kernel's checks
//!   ([`list::validate`]: item count within `list_limit`, page-aligned offsets and sizes, total
//!   within `size_limit_mb`, each fd a memfd sealed against shrinking and not against writing,
//!   ranges inside the file) with the kernel's default limits (1024 items, 64 MiB) unless
//!   `VIOGPU_UDMABUF_LIST_LIMIT` / `VIOGPU_UDMABUF_SIZE_LIMIT_MB` say otherwise; then a new
//!   placeholder fd (`O_CLOEXEC` per `UDMABUF_FLAGS_CLOEXEC`) recorded with its ranges and a
//!   duplicate of each memfd (the kernel holds the pages: the buffer outlives the memfd fds).
//!   Other ioctls on the device fail with `ENOTTY`, as the kernel's.
//! - `mmap`/`mmap64` of a recorded buffer fd: `MAP_SHARED` only (`EINVAL` otherwise, as the
//!   kernel's udmabuf), offset page aligned and the length within the buffer (`EINVAL`, as
//!   dma-buf's mmap); the whole length is reserved, then each range is mapped `MAP_SHARED |
//!   MAP_FIXED` from its memfd over it with the requested protection, so the mapping shows the
//!   ranges back to back and sees every later write to them.
//! - `close` of a recorded fd: forgotten (its memfd duplicates closed); mappings stay valid,
//!   as a dma-buf's do after its fd is closed.
//!
//! Everything else goes to the next definition (`dlsym(RTLD_NEXT)`, libc's). The records are
//! behind one mutex, so any thread may call in.
//!
//! Limits: no dma-buf semantics beyond mmap (no `DMA_BUF_IOCTL_SYNC`, no import into a GPU
//! API: QEMU's GL display paths cannot use these fds, which is why the harness uses it with no
//! display or VNC only); an fd made by `dup`/`dup2`/`fcntl(F_DUPFD)` of a recorded fd is a plain
//! memfd to the shim, and closing a recorded fd by other means (`close_range`, `dup2` onto
//! it) leaves a stale record; page size 4 KiB (x86_64). Set `VIOGPU_UDMABUF_LOG=1` to have
//! each buffer creation and mapping reported on stderr.
//!
//! Test support only; never linked into a test binary (the crate is a cdylib only). The
//! list and mapping logic ([`list`], [`map`]) is tested by `tests/logic.rs`.

pub mod list;
pub mod map;

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

use libc::{c_char, c_int, c_uint, c_ulong, c_void, off_t, size_t};

use crate::list::{CreateItem, CreateListHead, CreateOne, Limits, MemfdFacts, Piece};
use crate::map::{errno, map_segments, set_errno, MmapFn, MunmapFn};

/// The device path QEMU opens.
const DEVICE: &[u8] = b"/dev/udmabuf";

/// One dma-buf the shim made.
struct Buffer {
    /// The ranges, each with the shim's own duplicate of its memfd.
    pieces: Vec<Piece>,
    /// Bytes in the buffer.
    total: u64,
    /// The memfd duplicates to close when the buffer is forgotten (each once).
    dups: Vec<c_int>,
}

/// The fds the shim answers for.
struct Records {
    devices: Vec<c_int>,
    buffers: BTreeMap<c_int, Buffer>,
}

static RECORDS: Mutex<Records> = Mutex::new(Records {
    devices: Vec::new(),
    buffers: BTreeMap::new(),
});
/// Recorded fds in all; `close` and `mmap` take the lock only when it is not zero.
static RECORDED: AtomicUsize = AtomicUsize::new(0);

fn records() -> std::sync::MutexGuard<'static, Records> {
    RECORDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A libc function found once with `dlsym(RTLD_NEXT)`.
struct Next {
    name: &'static CStr,
    found: AtomicPtr<c_void>,
}

impl Next {
    const fn new(name: &'static CStr) -> Self {
        Self {
            name,
            found: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// The address, or null if there is none (then the caller fails with ENOSYS).
    fn address(&self) -> *mut c_void {
        let known = self.found.load(Ordering::Acquire);
        if !known.is_null() {
            return known;
        }
        // SAFETY: dlsym with a NUL-terminated name; RTLD_NEXT is valid in a shared object.
        let found = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) };
        self.found.store(found, Ordering::Release);
        found
    }
}

static NEXT_OPEN: Next = Next::new(c"open");
static NEXT_OPEN64: Next = Next::new(c"open64");
static NEXT_OPEN_2: Next = Next::new(c"__open_2");
static NEXT_OPEN64_2: Next = Next::new(c"__open64_2");
static NEXT_OPENAT: Next = Next::new(c"openat");
static NEXT_OPENAT64: Next = Next::new(c"openat64");
static NEXT_OPENAT_2: Next = Next::new(c"__openat_2");
static NEXT_OPENAT64_2: Next = Next::new(c"__openat64_2");
static NEXT_IOCTL: Next = Next::new(c"ioctl");
static NEXT_MMAP: Next = Next::new(c"mmap");
static NEXT_MMAP64: Next = Next::new(c"mmap64");
static NEXT_MUNMAP: Next = Next::new(c"munmap");
static NEXT_CLOSE: Next = Next::new(c"close");

type OpenFn = unsafe extern "C" fn(*const c_char, c_int, c_uint) -> c_int;
type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, c_uint) -> c_int;
type IoctlFn = unsafe extern "C" fn(c_int, c_ulong, *mut c_void) -> c_int;
type CloseFn = unsafe extern "C" fn(c_int) -> c_int;

/// Converts a found address to its function type.
///
/// # Safety
///
/// `address` must be null or the address of a function of type `F`.
unsafe fn as_fn<F: Copy>(address: *mut c_void) -> Option<F> {
    if address.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees `address` is a function of type `F` (a fn pointer, the
    // size of a data pointer on the supported targets).
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) })
}

fn next_close() -> Option<CloseFn> {
    // SAFETY: libc's close has this signature.
    unsafe { as_fn(NEXT_CLOSE.address()) }
}

fn next_mmap(which: &Next) -> Option<MmapFn> {
    // SAFETY: libc's mmap and mmap64 have this signature (off_t is 64 bits on x86_64).
    unsafe { as_fn(which.address()) }
}

fn next_munmap() -> Option<MunmapFn> {
    // SAFETY: libc's munmap has this signature.
    unsafe { as_fn(NEXT_MUNMAP.address()) }
}

fn log_enabled() -> bool {
    std::env::var_os("VIOGPU_UDMABUF_LOG").is_some_and(|v| v != "0")
}

/// Writes one line to stderr with `write(2)` (no std buffering, no interposed function).
fn log(line: &str) {
    let text = format!("udmabuf-shim: {line}\n");
    // SAFETY: writes `text.len()` bytes of a live buffer to fd 2.
    unsafe { libc::write(2, text.as_ptr().cast(), text.len()) };
}

/// True if `path` names the udmabuf device.
///
/// # Safety
///
/// `path` must be null or a NUL-terminated string.
unsafe fn is_device(path: *const c_char) -> bool {
    if path.is_null() {
        return false;
    }
    // SAFETY: the caller guarantees a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(path) };
    name.to_bytes() == DEVICE
}

/// A new placeholder fd: an empty memfd, close-on-exec if asked.
fn placeholder(name: &CStr, cloexec: bool) -> c_int {
    let flags = if cloexec { libc::MFD_CLOEXEC } else { 0 };
    // SAFETY: memfd_create with a NUL-terminated name.
    unsafe { libc::memfd_create(name.as_ptr(), flags) }
}

/// Opens a device placeholder and records it.
fn open_device(flags: c_int) -> c_int {
    let fd = placeholder(c"udmabuf-shim-device", flags & libc::O_CLOEXEC != 0);
    if fd >= 0 {
        records().devices.push(fd);
        RECORDED.fetch_add(1, Ordering::AcqRel);
        if log_enabled() {
            log(&format!("opened /dev/udmabuf as fd {fd}"));
        }
    }
    fd
}

/// `open` and its variants: the device, or the next definition.
///
/// # Safety
///
/// As `open(2)`; `path` a NUL-terminated string.
unsafe fn open_common(next: &Next, path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: the caller passes open's path argument.
    if unsafe { is_device(path) } {
        return open_device(flags);
    }
    // SAFETY: the next definition of an open-family function has this signature (the
    // fortified ones ignore the third argument).
    match unsafe { as_fn::<OpenFn>(next.address()) } {
        // SAFETY: forwarding the caller's arguments unchanged.
        Some(real) => unsafe { real(path, flags, mode) },
        None => {
            set_errno(libc::ENOSYS);
            -1
        }
    }
}

/// `openat` and its variants.
///
/// # Safety
///
/// As `openat(2)`.
unsafe fn openat_common(
    next: &Next,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: the caller passes openat's path argument.
    if unsafe { is_device(path) } {
        return open_device(flags);
    }
    // SAFETY: the next definition of an openat-family function has this signature.
    match unsafe { as_fn::<OpenatFn>(next.address()) } {
        // SAFETY: forwarding the caller's arguments unchanged.
        Some(real) => unsafe { real(dirfd, path, flags, mode) },
        None => {
            set_errno(libc::ENOSYS);
            -1
        }
    }
}

/// Interposes `open`; variadic in C, the mode is read from its register on x86_64 SysV.
///
/// # Safety
///
/// As `open(2)`.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: the caller's contract is open's.
    unsafe { open_common(&NEXT_OPEN, path, flags, mode) }
}

/// Interposes `open64`.
///
/// # Safety
///
/// As `open(2)`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
    // SAFETY: the caller's contract is open's.
    unsafe { open_common(&NEXT_OPEN64, path, flags, mode) }
}

/// Interposes glibc's fortified `__open_2` (two arguments).
///
/// # Safety
///
/// As `open(2)`.
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the caller's contract is open's.
    unsafe { open_common(&NEXT_OPEN_2, path, flags, 0) }
}

/// Interposes glibc's fortified `__open64_2`.
///
/// # Safety
///
/// As `open(2)`.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the caller's contract is open's.
    unsafe { open_common(&NEXT_OPEN64_2, path, flags, 0) }
}

/// Interposes `openat`.
///
/// # Safety
///
/// As `openat(2)`.
#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: the caller's contract is openat's.
    unsafe { openat_common(&NEXT_OPENAT, dirfd, path, flags, mode) }
}

/// Interposes `openat64`.
///
/// # Safety
///
/// As `openat(2)`.
#[no_mangle]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // SAFETY: the caller's contract is openat's.
    unsafe { openat_common(&NEXT_OPENAT64, dirfd, path, flags, mode) }
}

/// Interposes glibc's fortified `__openat_2`.
///
/// # Safety
///
/// As `openat(2)`.
#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the caller's contract is openat's.
    unsafe { openat_common(&NEXT_OPENAT_2, dirfd, path, flags, 0) }
}

/// Interposes glibc's fortified `__openat64_2`.
///
/// # Safety
///
/// As `openat(2)`.
#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: the caller's contract is openat's.
    unsafe { openat_common(&NEXT_OPENAT64_2, dirfd, path, flags, 0) }
}

/// The system's answers about memfds.
struct SystemFacts;

impl MemfdFacts for SystemFacts {
    fn seals(&self, fd: c_int) -> Result<c_int, c_int> {
        // SAFETY: fcntl(F_GET_SEALS) only reads the fd's seals.
        let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
        if seals < 0 {
            Err(errno())
        } else {
            Ok(seals)
        }
    }

    fn size(&self, fd: c_int) -> Result<u64, c_int> {
        let mut stat = std::mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: fstat writes a struct stat into the buffer given.
        let result = unsafe { libc::fstat(fd, stat.as_mut_ptr()) };
        if result < 0 {
            return Err(errno());
        }
        // SAFETY: fstat succeeded and filled the struct (zeroed before, so initialised).
        let stat = unsafe { stat.assume_init() };
        u64::try_from(stat.st_size).map_err(|_| libc::EINVAL)
    }
}

/// Makes a buffer from checked items; returns the new fd or the errno.
fn create(flags: u32, items: &[CreateItem]) -> Result<c_int, c_int> {
    let limits = Limits::from_vars(|name| std::env::var(name).ok());
    let (mut pieces, total) = list::validate(items, limits, &SystemFacts)?;
    // Our own duplicate of each memfd: the buffer keeps the memory as the kernel's pins it.
    let mut dups: Vec<(c_int, c_int)> = Vec::new();
    let close = next_close();
    let undo = |dups: &[(c_int, c_int)]| {
        if let Some(close) = close {
            for &(_, dup) in dups {
                // SAFETY: closing a duplicate this function made.
                unsafe { close(dup) };
            }
        }
    };
    for piece in &mut pieces {
        let dup = match dups.iter().find(|(original, _)| *original == piece.memfd) {
            Some(&(_, dup)) => dup,
            None => {
                // SAFETY: duplicating an fd the caller named (checked to be a memfd above).
                let dup = unsafe { libc::fcntl(piece.memfd, libc::F_DUPFD_CLOEXEC, 0) };
                if dup < 0 {
                    let error = errno();
                    undo(&dups);
                    return Err(error);
                }
                dups.push((piece.memfd, dup));
                dup
            }
        };
        piece.memfd = dup;
    }
    let fd = placeholder(
        c"udmabuf-shim-dmabuf",
        flags & list::UDMABUF_FLAGS_CLOEXEC != 0,
    );
    if fd < 0 {
        let error = errno();
        undo(&dups);
        return Err(error);
    }
    let count = pieces.len();
    records().buffers.insert(
        fd,
        Buffer {
            pieces,
            total,
            dups: dups.into_iter().map(|(_, dup)| dup).collect(),
        },
    );
    RECORDED.fetch_add(1, Ordering::AcqRel);
    if log_enabled() {
        log(&format!(
            "created dma-buf fd {fd}: {count} ranges, {total} bytes"
        ));
    }
    Ok(fd)
}

/// `UDMABUF_CREATE_LIST` with its argument.
///
/// # Safety
///
/// `arg` must point to a `struct udmabuf_create_list` with its items.
unsafe fn create_list(arg: *const c_void) -> Result<c_int, c_int> {
    if arg.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller guarantees a readable head (read unaligned: user memory).
    let head = unsafe { arg.cast::<CreateListHead>().read_unaligned() };
    list::check_count(
        head.count,
        Limits::from_vars(|name| std::env::var(name).ok()),
    )?;
    let first = arg
        .cast::<u8>()
        .wrapping_add(std::mem::size_of::<CreateListHead>())
        .cast::<CreateItem>();
    let items: Vec<CreateItem> = (0..head.count as usize)
        // SAFETY: the caller guarantees `count` readable items after the head.
        .map(|i| unsafe { first.wrapping_add(i).read_unaligned() })
        .collect();
    create(head.flags, &items)
}

/// `UDMABUF_CREATE` with its argument.
///
/// # Safety
///
/// `arg` must point to a `struct udmabuf_create`.
unsafe fn create_one(arg: *const c_void) -> Result<c_int, c_int> {
    if arg.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller guarantees a readable struct.
    let one = unsafe { arg.cast::<CreateOne>().read_unaligned() };
    let item = CreateItem {
        memfd: one.memfd,
        pad: 0,
        offset: one.offset,
        size: one.size,
    };
    create(one.flags, &[item])
}

fn is_recorded_device(fd: c_int) -> bool {
    RECORDED.load(Ordering::Acquire) != 0 && records().devices.contains(&fd)
}

/// Interposes `ioctl`; the third argument is read from its register (x86_64 SysV).
///
/// # Safety
///
/// As `ioctl(2)`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    if is_recorded_device(fd) {
        // c_ulong is u64 on x86_64 (a no-op there), not on every target.
        #[allow(clippy::useless_conversion)]
        let request_number = u64::from(request);
        let result = match request_number {
            // SAFETY: the caller passes the request's argument structure.
            list::UDMABUF_CREATE_LIST => unsafe { create_list(arg) },
            // SAFETY: the caller passes the request's argument structure.
            list::UDMABUF_CREATE => unsafe { create_one(arg) },
            _ => Err(libc::ENOTTY),
        };
        return match result {
            Ok(fd) => fd,
            Err(error) => {
                if log_enabled() {
                    log(&format!("ioctl {request:#x} failed with errno {error}"));
                }
                set_errno(error);
                -1
            }
        };
    }
    // SAFETY: libc's ioctl, called with a pointer-sized third argument like ours.
    match unsafe { as_fn::<IoctlFn>(NEXT_IOCTL.address()) } {
        // SAFETY: forwarding the caller's arguments unchanged.
        Some(real) => unsafe { real(fd, request, arg) },
        None => {
            set_errno(libc::ENOSYS);
            -1
        }
    }
}

/// `mmap` and `mmap64`: a recorded buffer, or the next definition.
///
/// # Safety
///
/// As `mmap(2)`.
unsafe fn mmap_common(
    next: &Next,
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: off_t,
) -> *mut c_void {
    let Some(real) = next_mmap(next) else {
        set_errno(libc::ENOSYS);
        return libc::MAP_FAILED;
    };
    if RECORDED.load(Ordering::Acquire) == 0 || flags & libc::MAP_ANONYMOUS != 0 {
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(addr, len, prot, flags, fd, offset) };
    }
    let guard = records();
    let Some(buffer) = guard.buffers.get(&fd) else {
        drop(guard);
        // SAFETY: forwarding the caller's arguments unchanged.
        return unsafe { real(addr, len, prot, flags, fd, offset) };
    };
    let shared = matches!(flags & 0x3, libc::MAP_SHARED | libc::MAP_SHARED_VALIDATE);
    let planned = if shared {
        u64::try_from(offset)
            .map_err(|_| libc::EINVAL)
            .and_then(|offset| list::plan(&buffer.pieces, buffer.total, offset, len as u64))
    } else {
        Err(libc::EINVAL)
    };
    let result = planned.and_then(|(rounded, segments)| {
        let munmap = next_munmap().ok_or(libc::ENOSYS)?;
        // SAFETY: the system's mmap/munmap; the segments lie inside `rounded` (plan's
        // contract); a MAP_FIXED hint is the caller's, as with mmap itself.
        unsafe { map_segments(&segments, rounded, addr, prot, flags, real, munmap) }
    });
    let total = buffer.total;
    drop(guard);
    match result {
        Ok(address) => {
            if log_enabled() {
                log(&format!(
                    "mapped dma-buf fd {fd} ({total} bytes): {len} bytes from {offset} at {address:p}"
                ));
            }
            address
        }
        Err(error) => {
            if log_enabled() {
                log(&format!(
                    "mmap of dma-buf fd {fd} ({total} bytes, {len} bytes from {offset}) failed with errno {error}"
                ));
            }
            set_errno(error);
            libc::MAP_FAILED
        }
    }
}

/// Interposes `mmap`.
///
/// # Safety
///
/// As `mmap(2)`.
#[no_mangle]
pub unsafe extern "C" fn mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: off_t,
) -> *mut c_void {
    // SAFETY: the caller's contract is mmap's.
    unsafe { mmap_common(&NEXT_MMAP, addr, len, prot, flags, fd, offset) }
}

/// Interposes `mmap64` (the same as `mmap` on x86_64).
///
/// # Safety
///
/// As `mmap(2)`.
#[no_mangle]
pub unsafe extern "C" fn mmap64(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    offset: off_t,
) -> *mut c_void {
    // SAFETY: the caller's contract is mmap's.
    unsafe { mmap_common(&NEXT_MMAP64, addr, len, prot, flags, fd, offset) }
}

/// Interposes `close`: forgets a recorded fd, then closes it.
///
/// # Safety
///
/// As `close(2)`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    let Some(real) = next_close() else {
        set_errno(libc::ENOSYS);
        return -1;
    };
    if RECORDED.load(Ordering::Acquire) != 0 {
        // Forgotten before the fd is closed, under the lock: once closed, the number may be
        // handed out again and recorded anew.
        let mut guard = records();
        let mut forgotten = None;
        if let Some(at) = guard.devices.iter().position(|&d| d == fd) {
            guard.devices.swap_remove(at);
            RECORDED.fetch_sub(1, Ordering::AcqRel);
        } else if let Some(buffer) = guard.buffers.remove(&fd) {
            RECORDED.fetch_sub(1, Ordering::AcqRel);
            forgotten = Some(buffer.dups);
        }
        // SAFETY: closing the caller's fd, as asked.
        let result = unsafe { real(fd) };
        let error = errno();
        drop(guard);
        if let Some(dups) = forgotten {
            for dup in dups {
                // SAFETY: closing the shim's own duplicate of a memfd.
                unsafe { real(dup) };
            }
            if log_enabled() {
                log(&format!("closed dma-buf fd {fd}"));
            }
        }
        if result < 0 {
            set_errno(error);
        }
        return result;
    }
    // SAFETY: forwarding the caller's argument unchanged.
    unsafe { real(fd) }
}
