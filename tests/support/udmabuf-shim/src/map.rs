//! Carrying out a mapping [`plan`](crate::list::plan): one reservation of the whole length,
//! then each segment mapped `MAP_SHARED | MAP_FIXED` from its memfd over the reservation, so
//! the buffer's pages appear contiguous as a dma-buf mapping's do, and writes through the
//! memfds (the guest's RAM) show through it. The `mmap`/`munmap` to use are parameters: the
//! shim passes libc's real ones (its own `mmap` is the interposed one), tests pass libc's.

use libc::{c_int, c_void, off_t, size_t};

use crate::list::Segment;

/// `mmap`'s signature.
pub type MmapFn =
    unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;
/// `munmap`'s signature.
pub type MunmapFn = unsafe extern "C" fn(*mut c_void, size_t) -> c_int;

/// The `mmap` flags a buffer mapping passes on from the caller's: where it goes
/// (`MAP_FIXED`, `MAP_FIXED_NOREPLACE`) and `MAP_POPULATE`, `MAP_LOCKED`.
const PASSED_ON: c_int =
    libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE | libc::MAP_POPULATE | libc::MAP_LOCKED;

/// Maps `len` bytes (whole pages) at `hint` (with the caller's `flags` deciding how binding
/// the hint is) as `segments`, with protection `prot`. Returns the address, or the errno of
/// the `mmap` that failed (after undoing the reservation).
///
/// # Safety
///
/// `mmap` and `munmap` must behave as the system's. With `MAP_FIXED` in `flags` whatever was
/// mapped at `hint` is replaced, as with `mmap` itself. Every segment must lie inside `len`.
pub unsafe fn map_segments(
    segments: &[Segment],
    len: u64,
    hint: *mut c_void,
    prot: c_int,
    flags: c_int,
    mmap: MmapFn,
    munmap: MunmapFn,
) -> Result<*mut c_void, c_int> {
    let total = usize::try_from(len).map_err(|_| libc::ENOMEM)?;
    let reserve_flags = libc::MAP_PRIVATE
        | libc::MAP_ANONYMOUS
        | libc::MAP_NORESERVE
        | (flags & PASSED_ON & !libc::MAP_POPULATE & !libc::MAP_LOCKED);
    // SAFETY: an anonymous PROT_NONE mapping; the caller vouches for `hint` with MAP_FIXED.
    let base = unsafe { mmap(hint, total, libc::PROT_NONE, reserve_flags, -1, 0) };
    if base == libc::MAP_FAILED {
        return Err(errno());
    }
    for segment in segments {
        let at = usize::try_from(segment.at).map_err(|_| libc::ENOMEM);
        let seg_len = usize::try_from(segment.len).map_err(|_| libc::ENOMEM);
        let file_offset = off_t::try_from(segment.file_offset).map_err(|_| libc::EINVAL);
        let (at, seg_len, file_offset) = match (at, seg_len, file_offset) {
            (Ok(a), Ok(l), Ok(o)) if a.checked_add(l).is_some_and(|end| end <= total) => (a, l, o),
            _ => {
                // SAFETY: `base..base + total` is the reservation made above.
                unsafe { munmap(base, total) };
                return Err(libc::EINVAL);
            }
        };
        let target = base.cast::<u8>().wrapping_add(at).cast::<c_void>();
        let seg_flags =
            libc::MAP_SHARED | libc::MAP_FIXED | (flags & (libc::MAP_POPULATE | libc::MAP_LOCKED));
        // SAFETY: `target..target + seg_len` lies inside the reservation (checked above), which
        // this function owns, so MAP_FIXED replaces only its own pages.
        let got = unsafe { mmap(target, seg_len, prot, seg_flags, segment.memfd, file_offset) };
        if got == libc::MAP_FAILED {
            let error = errno();
            // SAFETY: `base..base + total` is the reservation made above (now partly mapped).
            unsafe { munmap(base, total) };
            return Err(error);
        }
    }
    Ok(base)
}

/// The calling thread's errno.
pub fn errno() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Sets the calling thread's errno.
pub fn set_errno(value: c_int) {
    // SAFETY: __errno_location returns the calling thread's errno slot, always valid.
    let slot = unsafe { libc::__errno_location() };
    // SAFETY: `slot` is valid and only this thread uses it.
    unsafe { *slot = value };
}
