//! Heap allocation that reports failure instead of aborting.
//!
//! In the kernel a failed allocation must be an error the caller handles: `Box::new`,
//! `Arc::new`, `Vec::push` past the capacity, `to_vec`, `collect` and friends call
//! `handle_alloc_error` when the allocator returns null, which aborts (a bugcheck on
//! Windows). Stable Rust has no `Box::try_new` or `Arc::try_new`, so this module has the two
//! the driver needs: [`try_box`], and [`Shared`], a reference-counted pointer (an `Arc`
//! without weak references) whose constructor is fallible. Vectors use `try_reserve` before
//! they grow ([`try_push`], [`try_to_vec`], [`try_filled`]).

// The wrappers themselves: each aborting call below comes after a successful reservation
// (or allocates nothing: a zero-sized box).
#![allow(clippy::disallowed_methods)]

use alloc::alloc::{alloc, Layout};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::NonNull;
use core::sync::atomic::{fence, AtomicUsize, Ordering};

use crate::{Error, Result};

/// `Box::new(value)`, or [`Error::NoMemory`] (and `value` dropped) when the heap is out.
pub fn try_box<T>(value: T) -> Result<Box<T>> {
    try_box_or_return(value).map_err(|_| Error::NoMemory)
}

/// `Box::new(value)`, or `value` back when the heap is out (for values that must not just be
/// dropped, such as a device's queues the device may still read).
pub fn try_box_or_return<T>(value: T) -> core::result::Result<Box<T>, T> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        // A zero-sized box allocates nothing.
        return Ok(Box::new(value));
    }
    // SAFETY: `layout` has a non-zero size, as `alloc` requires.
    let raw = unsafe { alloc(layout) }.cast::<T>();
    let Some(ptr) = NonNull::new(raw) else {
        return Err(value);
    };
    // SAFETY: `ptr` is a fresh, non-null, aligned block with `T`'s layout: writable, and
    // nothing to drop there yet.
    unsafe { ptr.as_ptr().write(value) };
    // SAFETY: the block came from the global allocator with `T`'s layout, as `Box::from_raw`
    // requires, and holds an initialized `T` (written just above).
    Ok(unsafe { Box::from_raw(ptr.as_ptr()) })
}

/// `v.push(item)` that reserves first: [`Error::NoMemory`] instead of an abort.
pub fn try_push<T>(v: &mut Vec<T>, item: T) -> Result<()> {
    v.try_reserve(1).map_err(|_| Error::NoMemory)?;
    v.push(item);
    Ok(())
}

/// `v.extend_from_slice(items)` that reserves first: [`Error::NoMemory`] instead of an abort.
pub fn try_extend_from_slice<T: Copy>(v: &mut Vec<T>, items: &[T]) -> Result<()> {
    v.try_reserve(items.len()).map_err(|_| Error::NoMemory)?;
    v.extend_from_slice(items);
    Ok(())
}

/// `bytes.to_vec()`, or [`Error::NoMemory`].
pub fn try_to_vec<T: Copy>(items: &[T]) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(items.len())
        .map_err(|_| Error::NoMemory)?;
    v.extend_from_slice(items);
    Ok(v)
}

/// `vec![value; len]`, or [`Error::NoMemory`].
pub fn try_filled<T: Clone>(len: usize, value: T) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::NoMemory)?;
    v.resize(len, value);
    Ok(v)
}

/// The block behind a [`Shared`]: the value first (so a pointer to the block is a pointer to
/// the value, which [`Shared::into_raw`] relies on), then the count of owners.
#[repr(C)]
struct SharedBlock<T> {
    value: T,
    owners: AtomicUsize,
}

/// A thread-safe reference-counted pointer like `Arc<T>` (no weak references) that is made
/// with a fallible allocation ([`Shared::try_new`]). Cloning and dropping never allocate.
pub struct Shared<T> {
    block: NonNull<SharedBlock<T>>,
    _owns: PhantomData<SharedBlock<T>>,
}

// SAFETY: as for Arc<T>: the value is shared between threads (Sync needed) and may be dropped
// on any of them (Send needed); the count is atomic.
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// One owner of `value`, or `value` back when the heap is out.
    pub fn try_new(value: T) -> core::result::Result<Self, T> {
        let block = try_box_or_return(SharedBlock {
            value,
            owners: AtomicUsize::new(1),
        })
        .map_err(|block| block.value)?;
        Ok(Self {
            block: NonNull::from(Box::leak(block)),
            _owns: PhantomData,
        })
    }

    fn block(&self) -> &SharedBlock<T> {
        // SAFETY: the block lives while any owner does, and `self` is one.
        unsafe { self.block.as_ref() }
    }

    /// The number of owners (racy unless the caller knows nobody clones or drops meanwhile).
    pub fn owners(this: &Self) -> usize {
        this.block().owners.load(Ordering::Acquire)
    }

    /// The value, if `this` is its only owner; `this` back otherwise.
    pub fn try_unwrap(this: Self) -> core::result::Result<T, Self> {
        if this
            .block()
            .owners
            .compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(this);
        }
        let this = ManuallyDrop::new(this);
        // SAFETY: the count went from 1 to 0, so `this` was the last owner and nobody else
        // can reach the block; it came from `Box::leak` in `try_new`.
        let block = unsafe { Box::from_raw(this.block.as_ptr()) };
        Ok(block.value)
    }

    /// Gives up `this` as a raw pointer to the value, keeping its ownership; get it back with
    /// [`from_raw`](Self::from_raw).
    pub fn into_raw(this: Self) -> *const T {
        let this = ManuallyDrop::new(this);
        // The value is the first field of a repr(C) block: same address.
        this.block.as_ptr().cast_const().cast::<T>()
    }

    /// Takes back an ownership given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    /// `ptr` came from `Shared::<T>::into_raw` and is taken back once.
    pub unsafe fn from_raw(ptr: *const T) -> Self {
        Self {
            // SAFETY: non-null, from `into_raw` (caller's contract), which pointed at the
            // block's first field, so at the block.
            block: unsafe { NonNull::new_unchecked(ptr.cast_mut().cast::<SharedBlock<T>>()) },
            _owns: PhantomData,
        }
    }

    /// True when both point at the same value.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.block == b.block
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        // Relaxed as in Arc: a new owner comes from an existing one. The count cannot
        // overflow: every owner is a live value of at least one pointer, and the address
        // space holds fewer than usize::MAX / 8 of them.
        self.block().owners.fetch_add(1, Ordering::Relaxed);
        Self {
            block: self.block,
            _owns: PhantomData,
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.block().value
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if self.block().owners.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other owner's uses happen before the free (as in Arc).
        fence(Ordering::Acquire);
        // SAFETY: this was the last owner; the block came from `Box::leak` in `try_new`.
        drop(unsafe { Box::from_raw(self.block.as_ptr()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::sync::atomic::AtomicU32;

    struct Counted<'a>(&'a AtomicU32);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn shared_drops_its_value_once_with_the_last_owner() {
        let drops = AtomicU32::new(0);
        let a = Shared::try_new(Counted(&drops)).ok().unwrap();
        let b = a.clone();
        assert!(Shared::ptr_eq(&a, &b));
        assert_eq!(Shared::owners(&a), 2);
        let a = Shared::try_unwrap(a).err().unwrap();
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        let raw = Shared::into_raw(a.clone());
        // SAFETY: from into_raw, taken back once.
        let c = unsafe { Shared::from_raw(raw) };
        drop(c);
        assert_eq!(Shared::owners(&a), 1);
        let value = Shared::try_unwrap(a).ok().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(value);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn boxes_and_vectors() {
        assert_eq!(*try_box(7u64).unwrap(), 7);
        assert_eq!(*try_box(()).unwrap(), ());
        let mut v = Vec::new();
        try_push(&mut v, 1u8).unwrap();
        assert_eq!(try_to_vec(&[1u8, 2]).unwrap(), [1, 2]);
        assert_eq!(try_filled(3, None::<u8>).unwrap(), [None, None, None]);
        assert!(
            try_filled(usize::MAX, 0u64).is_err(),
            "capacity overflow is an error"
        );
        assert_eq!(v, [1]);
    }
}
