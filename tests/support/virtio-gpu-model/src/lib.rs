//! Test support: the simulated platform and virtio-gpu device the driver core is tested
//! against. [`GuestMemoryHal`] provides DMA memory out of `vm-memory` guest RAM, which the
//! device side (rust-vmm's `virtio-queue`) reads and writes by guest physical address.

pub mod guest_memory;

pub use guest_memory::GuestMemoryHal;
