//! Register windows cut out of larger ones.
//!
//! A platform maps whole BARs; the transport wants one window per virtio structure, starting
//! at the structure's first byte. [`RegionWindow`] is that cut: an offset and a length over
//! any [`RegisterAccess`], with every access checked against the length, so a wrong offset
//! reads all-ones and writes nothing instead of reaching a neighbouring structure.
//! `RegisterAccess` is also implemented for `&T` and `Arc<T>`, so several windows can share
//! one BAR mapping.

use alloc::sync::Arc;

use super::capability::Region;
use crate::hal::RegisterAccess;
use crate::{Error, Result};

/// A bounded sub-window `[base, base + len)` of another register window.
#[derive(Debug, Clone)]
pub struct RegionWindow<B> {
    inner: B,
    base: usize,
    len: usize,
}

impl<B: RegisterAccess> RegionWindow<B> {
    /// The window of `len` bytes starting at byte `base` of `inner`. Fails with
    /// [`Error::OutOfBounds`] if `base + len` overflows.
    pub fn new(inner: B, base: usize, len: usize) -> Result<Self> {
        base.checked_add(len).ok_or(Error::OutOfBounds)?;
        Ok(Self { inner, base, len })
    }

    /// The window of a virtio structure inside `bar`, a mapping of the region's whole BAR.
    /// The caller has checked the region against the BAR's mapped length
    /// ([`VirtioPciLayout::check_bars`](super::VirtioPciLayout::check_bars)).
    pub fn for_region(bar: B, region: &Region) -> Result<Self> {
        let base = usize::try_from(region.offset).map_err(|_| Error::OutOfBounds)?;
        let len = usize::try_from(region.len).map_err(|_| Error::OutOfBounds)?;
        Self::new(bar, base, len)
    }

    /// Length of the window in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-length window.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset in `inner` of an access of `width` bytes at `offset`, if it fits the window.
    fn place(&self, offset: usize, width: usize) -> Option<usize> {
        let end = offset.checked_add(width)?;
        if end > self.len {
            return None;
        }
        // Cannot overflow: base + len was checked in `new` and offset + width <= len.
        self.base.checked_add(offset)
    }
}

impl<B: RegisterAccess> RegisterAccess for RegionWindow<B> {
    fn read_u8(&self, offset: usize) -> u8 {
        self.place(offset, 1)
            .map_or(u8::MAX, |at| self.inner.read_u8(at))
    }
    fn read_u16(&self, offset: usize) -> u16 {
        self.place(offset, 2)
            .map_or(u16::MAX, |at| self.inner.read_u16(at))
    }
    fn read_u32(&self, offset: usize) -> u32 {
        self.place(offset, 4)
            .map_or(u32::MAX, |at| self.inner.read_u32(at))
    }
    fn write_u8(&self, offset: usize, value: u8) {
        if let Some(at) = self.place(offset, 1) {
            self.inner.write_u8(at, value);
        }
    }
    fn write_u16(&self, offset: usize, value: u16) {
        if let Some(at) = self.place(offset, 2) {
            self.inner.write_u16(at, value);
        }
    }
    fn write_u32(&self, offset: usize, value: u32) {
        if let Some(at) = self.place(offset, 4) {
            self.inner.write_u32(at, value);
        }
    }
}

macro_rules! forward_register_access {
    ($($ty:ty),*) => {$(
        impl<T: RegisterAccess + ?Sized> RegisterAccess for $ty {
            fn read_u8(&self, offset: usize) -> u8 {
                (**self).read_u8(offset)
            }
            fn read_u16(&self, offset: usize) -> u16 {
                (**self).read_u16(offset)
            }
            fn read_u32(&self, offset: usize) -> u32 {
                (**self).read_u32(offset)
            }
            fn write_u8(&self, offset: usize, value: u8) {
                (**self).write_u8(offset, value)
            }
            fn write_u16(&self, offset: usize, value: u16) {
                (**self).write_u16(offset, value)
            }
            fn write_u32(&self, offset: usize, value: u32) {
                (**self).write_u32(offset, value)
            }
        }
    )*};
}

forward_register_access!(&T, Arc<T>);
