//! TEMPORARY PROBE — a tiny split virtqueue with one request in flight at a time, enough to
//! send virtio-gpu control commands and wait for their answers by polling. To be replaced by
//! `viogpu_common::virtqueue` once that is merged.

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use viogpu_common::hal::{DmaBuffer, RegisterAccess};
use viogpu_common::{Error, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::hosted::bar::RegisterWindow;
use crate::hosted::dma::DevMemHal;

use super::common_cfg as cc;

/// Descriptor table entry (virtio 1.x §2.7.5), little-endian on the x86 guest.
#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Default)]
#[repr(C)]
struct Descriptor {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

const DESC_F_NEXT: u16 = 1;
const DESC_F_WRITE: u16 = 2;
/// Largest request or response the probe sends (one page each).
const BUFFER_LEN: usize = 4096;
/// Queue size the probe asks for (the device offers 64 for the control queue).
const MAX_QUEUE_SIZE: u16 = 64;

/// One split virtqueue with its ring memory and a request/response page pair.
pub struct ProbeQueue {
    index: u16,
    size: u16,
    notify: RegisterWindow,
    notify_offset: usize,
    desc: DmaBuffer<DevMemHal>,
    avail: DmaBuffer<DevMemHal>,
    used: DmaBuffer<DevMemHal>,
    request: DmaBuffer<DevMemHal>,
    response: DmaBuffer<DevMemHal>,
    next_avail: u16,
    last_used: u16,
}

impl ProbeQueue {
    /// Sets up queue `index` through the common configuration window and enables it. Must be
    /// called after FEATURES_OK and before DRIVER_OK.
    pub fn new(
        hal: &DevMemHal,
        common: &RegisterWindow,
        notify: RegisterWindow,
        notify_multiplier: u32,
        index: u16,
    ) -> Result<Self> {
        common.write_u16(cc::QUEUE_SELECT, index);
        let offered = common.read_u16(cc::QUEUE_SIZE);
        if offered == 0 || offered == u16::MAX {
            return Err(Error::BadCapability);
        }
        // Split queue sizes are powers of two; take the largest one we want that fits.
        let size = offered.min(MAX_QUEUE_SIZE);
        let size = 1u16 << (15 - size.leading_zeros());
        common.write_u16(cc::QUEUE_SIZE, size);
        let n = usize::from(size);
        let desc = DmaBuffer::new(hal, 16 * n)?;
        let avail = DmaBuffer::new(hal, 6 + 2 * n)?;
        let used = DmaBuffer::new(hal, 6 + 8 * n)?;
        let request = DmaBuffer::new(hal, BUFFER_LEN)?;
        let response = DmaBuffer::new(hal, BUFFER_LEN)?;
        write_u64(common, cc::QUEUE_DESC, desc.phys());
        write_u64(common, cc::QUEUE_DRIVER, avail.phys());
        write_u64(common, cc::QUEUE_DEVICE, used.phys());
        let notify_offset = usize::from(common.read_u16(cc::QUEUE_NOTIFY_OFF))
            .checked_mul(notify_multiplier as usize)
            .filter(|&off| off.checked_add(2).is_some_and(|end| end <= notify.len()))
            .ok_or(Error::BadCapability)?;
        common.write_u16(cc::QUEUE_ENABLE, 1);
        Ok(Self {
            index,
            size,
            notify,
            notify_offset,
            desc,
            avail,
            used,
            request,
            response,
            next_avail: 0,
            last_used: 0,
        })
    }

    /// Sends `request` (device-readable) with a `response_len`-byte device-writable buffer,
    /// waits up to `timeout` for the device to return it, and gives back the bytes written.
    pub fn call(
        &mut self,
        request: &[u8],
        response_len: usize,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        if request.is_empty() || request.len() > BUFFER_LEN || response_len > BUFFER_LEN {
            return Err(Error::InvalidArgument);
        }
        self.request.write_bytes(0, request)?;
        self.response.fill(0, BUFFER_LEN, 0)?;
        let chain = [
            Descriptor {
                addr: self.request.phys(),
                len: request.len() as u32,
                flags: DESC_F_NEXT,
                next: 1,
            },
            Descriptor {
                addr: self.response.phys(),
                len: response_len as u32,
                flags: DESC_F_WRITE,
                next: 0,
            },
        ];
        self.desc.write_obj(0, &chain)?;
        let slot = usize::from(self.next_avail % self.size);
        self.avail.write_obj(4 + 2 * slot, &0u16)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        // The descriptors and ring entry must be visible before the index that publishes them.
        fence(Ordering::SeqCst);
        write_volatile_u16(&self.avail, 2, self.next_avail)?;
        fence(Ordering::SeqCst);
        self.notify.write_u16(self.notify_offset, self.index);

        let deadline = Instant::now() + timeout;
        loop {
            let used_idx = read_volatile_u16(&self.used, 2)?;
            if used_idx != self.last_used {
                if used_idx != self.next_avail {
                    return Err(Error::BadUsedIndex);
                }
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout);
            }
            std::thread::yield_now();
        }
        fence(Ordering::SeqCst);
        let slot = 4 + 8 * usize::from(self.last_used % self.size);
        self.last_used = self.last_used.wrapping_add(1);
        let id: u32 = self.used.read_obj(slot)?;
        let len: u32 = self.used.read_obj(slot + 4)?;
        if id != 0 {
            return Err(Error::BadUsedId { id });
        }
        let written = usize::try_from(len).map_err(|_| Error::BadUsedLength {
            len,
            max: response_len as u32,
        })?;
        if written > response_len {
            return Err(Error::BadUsedLength {
                len,
                max: response_len as u32,
            });
        }
        let mut out = vec![0u8; written];
        self.response.read_bytes(0, &mut out)?;
        Ok(out)
    }
}

fn write_u64(window: &RegisterWindow, offset: usize, value: u64) {
    window.write_u32(offset, value as u32);
    window.write_u32(offset + 4, (value >> 32) as u32);
}

fn u16_ptr(buffer: &DmaBuffer<DevMemHal>, offset: usize) -> Result<*mut u16> {
    if offset % 2 != 0 || offset.checked_add(2).is_none_or(|end| end > buffer.len()) {
        return Err(Error::OutOfBounds);
    }
    // SAFETY: offset + 2 <= len was checked, so the pointer stays in the buffer.
    Ok(unsafe { buffer.as_ptr().as_ptr().add(offset) }.cast())
}

/// Ring indices are shared with the device, so they are read and written volatile.
fn read_volatile_u16(buffer: &DmaBuffer<DevMemHal>, offset: usize) -> Result<u16> {
    let ptr = u16_ptr(buffer, offset)?;
    // SAFETY: in bounds (u16_ptr) and 2-aligned (page-aligned buffer, even offset); DMA memory
    // is always initialised (zeroed at allocation).
    Ok(u16::from_le(unsafe { ptr.read_volatile() }))
}

fn write_volatile_u16(buffer: &DmaBuffer<DevMemHal>, offset: usize, value: u16) -> Result<()> {
    let ptr = u16_ptr(buffer, offset)?;
    // SAFETY: as in read_volatile_u16; the ring page is owned by this queue and the device
    // only reads the avail ring.
    unsafe { ptr.write_volatile(value.to_le()) };
    Ok(())
}
