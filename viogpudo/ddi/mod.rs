//! `#[repr(C)]` mirrors of the display-miniport (DXGK) ABI the driver uses: the KMDOD DDI
//! table, the dxgkrnl callback table, the VidPN/monitor interfaces, every DDI argument
//! structure, and the enums, constants and status codes, at the layout of
//! `DXGKDDI_INTERFACE_VERSION_WIN8` (0x300E) for x86_64 Windows (LLP64).
//!
//! wdk-sys has no display headers, so these mirrors are the driver's only view of the ABI. Names
//! follow the C headers exactly so they can be checked mechanically: every type, field,
//! bitfield, callback signature and constant declared here is recorded in a registry
//! ([`layout_table`], [`signature_table`], [`constant_table`]) and the `ddi_layout` test holds
//! each record against the sizes, offsets, masks and values computed from the WDK 10.0.26100
//! headers (`tests/wdk-facts/`).
//!
//! Conventions:
//! - C bitfields are mirrored as their storage integer plus getter/setter pairs that touch only
//!   the field's own bits.
//! - C unions are mirrored by the member a display-only driver uses (documented per field), so
//!   no access needs `unsafe`.
//! - C enums are `i32` newtypes: the OS may send values this code does not know.
//! - Callbacks are `Option<unsafe extern "system" fn(..)>`; `None` is a null entry.
//! - Structures the OS hands over may be larger on newer Windows (their `Size`/`Version` say
//!   so); the mirrors cover the WIN8 prefix, which never moves.
#![allow(non_camel_case_types, non_snake_case, non_upper_case_globals)]
#![allow(clippy::upper_case_acronyms)]

#[macro_use]
mod macros;

pub mod args;
pub mod args_caps;
pub mod constants;
pub mod dxgkrnl;
pub mod init;
pub mod registry;
pub mod status;
pub mod types;
pub mod vidpn;
pub mod vidpn_iface;

pub use args::*;
pub use args_caps::*;
pub use constants::*;
pub use dxgkrnl::*;
pub use init::*;
pub use status::*;
pub use types::*;
pub use vidpn::*;
pub use vidpn_iface::*;

use registry::{ConstantValue, FnSignature, TypeLayout};

/// Every mirrored type (structs, unions, enums, scalar typedefs, opaque objects).
pub fn layout_table() -> impl Iterator<Item = &'static TypeLayout> {
    [
        types::SCALAR_TYPES,
        types::BASIC_TYPES,
        constants::ENUM_TYPES,
        vidpn::VIDPN_TYPES,
        vidpn_iface::IFACE_SCALARS,
        vidpn_iface::IFACE_TYPES,
        dxgkrnl::DXGKRNL_SCALARS,
        dxgkrnl::DXGKRNL_TYPES,
        args::ARG_SCALARS,
        args::ARG_TYPES,
        args_caps::CAPS_TYPES,
        init::INIT_TYPES,
    ]
    .into_iter()
    .flatten()
}

/// Every mirrored function-pointer typedef.
pub fn signature_table() -> impl Iterator<Item = &'static FnSignature> {
    [
        init::INIT_SIGNATURES,
        dxgkrnl::DXGKRNL_SIGNATURES,
        vidpn_iface::IFACE_SIGNATURES,
    ]
    .into_iter()
    .flatten()
}

/// Every mirrored constant with its value.
pub fn constant_table() -> impl Iterator<Item = &'static ConstantValue> {
    [
        constants::DEFINE_VALUES,
        constants::ENUM_VALUES,
        status::STATUS_VALUES,
    ]
    .into_iter()
    .flatten()
    .flat_map(|group| group.iter())
}
