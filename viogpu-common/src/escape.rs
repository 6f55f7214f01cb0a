//! The escape protocol's wire format, shared by the driver (`viogpudo`'s DxgkDdiEscape,
//! which checks and answers requests) and the resolution agent (`viogpu-agent`, which builds
//! them and reads the replies), so that the protocol is written down once.
//!
//! Every request starts with an [`EscapeHeader`]: magic `"VGDO"` ([`ESCAPE_MAGIC`]), the
//! protocol [`ESCAPE_VERSION`], a command, a status the driver fills in, and the size of the
//! whole request. The request buffer is also the reply buffer. Commands:
//! - [`ESCAPE_QUERY_DISPLAYS`] ([`EscapeQueryDisplays`]): per scanout, whether a monitor is
//!   connected, the host's preferred size, the current source mode and any custom size.
//! - [`ESCAPE_SET_CUSTOM_MODE`] ([`EscapeCustomMode`]): makes `width` x `height` the
//!   preferred mode of one scanout (a size [`crate::modes::check_size`] accepts); 0 x 0
//!   removes the custom mode.
//!
//! All fields are little-endian `u32`/`i32`; structures have no padding. The driver's
//! validation rules are in its `adapter::escape` module.

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// `"VGDO"` as a little-endian u32.
pub const ESCAPE_MAGIC: u32 = u32::from_le_bytes(*b"VGDO");
/// The protocol version this driver speaks.
pub const ESCAPE_VERSION: u32 = 1;
/// Command: report every scanout ([`EscapeQueryDisplays`]).
pub const ESCAPE_QUERY_DISPLAYS: u32 = 1;
/// Command: set a custom preferred mode ([`EscapeCustomMode`]).
pub const ESCAPE_SET_CUSTOM_MODE: u32 = 2;
/// Most scanouts reported.
pub const ESCAPE_MAX_DISPLAYS: usize = 16;

/// The header of every escape request.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EscapeHeader {
    /// [`ESCAPE_MAGIC`].
    pub magic: u32,
    /// [`ESCAPE_VERSION`].
    pub version: u32,
    /// One of the `ESCAPE_*` commands.
    pub command: u32,
    /// Size in bytes of the whole request (= `PrivateDriverDataSize`).
    pub size: u32,
    /// Filled in by the driver: the NTSTATUS of the command.
    pub status: i32,
    /// Zero.
    pub reserved: u32,
}

/// One scanout in [`EscapeQueryDisplays`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EscapeDisplay {
    /// Scanout index (= VidPN source and target id).
    pub scanout: u32,
    /// 1 when a monitor is connected.
    pub connected: u32,
    /// The host's preferred width (0 when the device reports none).
    pub preferred_width: u32,
    /// The host's preferred height.
    pub preferred_height: u32,
    /// Current source mode width (0 when the source is off).
    pub current_width: u32,
    /// Current source mode height.
    pub current_height: u32,
    /// Custom width set through the escape (0 when none).
    pub custom_width: u32,
    /// Custom height.
    pub custom_height: u32,
}

/// [`ESCAPE_QUERY_DISPLAYS`]: header in, header + count + displays out.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct EscapeQueryDisplays {
    /// Header.
    pub header: EscapeHeader,
    /// Number of valid entries in `displays`.
    pub count: u32,
    /// Zero.
    pub reserved: u32,
    /// One entry per scanout.
    pub displays: [EscapeDisplay; ESCAPE_MAX_DISPLAYS],
}

/// [`ESCAPE_SET_CUSTOM_MODE`].
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct EscapeCustomMode {
    /// Header.
    pub header: EscapeHeader,
    /// The scanout.
    pub scanout: u32,
    /// Width in pixels (0 with height 0: remove the custom mode).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Zero.
    pub reserved: u32,
}

impl EscapeHeader {
    /// The header of a `command` request of `size` bytes, status zero.
    pub const fn new(command: u32, size: usize) -> Self {
        Self {
            magic: ESCAPE_MAGIC,
            version: ESCAPE_VERSION,
            command,
            size: size as u32,
            status: 0,
            reserved: 0,
        }
    }
}

impl EscapeQueryDisplays {
    /// A query request: the header, everything else zero.
    pub fn request() -> Self {
        let mut request = Self::new_zeroed();
        request.header = EscapeHeader::new(ESCAPE_QUERY_DISPLAYS, core::mem::size_of::<Self>());
        request
    }
}

impl EscapeCustomMode {
    /// A request making `width` x `height` the preferred mode of `scanout` (0 x 0: remove it).
    pub const fn request(scanout: u32, width: u32, height: u32) -> Self {
        Self {
            header: EscapeHeader::new(ESCAPE_SET_CUSTOM_MODE, core::mem::size_of::<Self>()),
            scanout,
            width,
            height,
            reserved: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_have_no_padding() {
        assert_eq!(core::mem::size_of::<EscapeHeader>(), 24);
        assert_eq!(core::mem::size_of::<EscapeDisplay>(), 32);
        assert_eq!(
            core::mem::size_of::<EscapeQueryDisplays>(),
            24 + 8 + 16 * 32
        );
        assert_eq!(core::mem::size_of::<EscapeCustomMode>(), 40);
        assert_eq!(&ESCAPE_MAGIC.to_le_bytes(), b"VGDO");
    }

    #[test]
    fn requests_carry_their_own_size() {
        let query = EscapeQueryDisplays::request();
        assert_eq!(query.header.size as usize, query.as_bytes().len());
        assert_eq!(query.header.command, ESCAPE_QUERY_DISPLAYS);
        let custom = EscapeCustomMode::request(1, 1366, 700);
        assert_eq!(custom.header.size, 40);
        assert_eq!(&custom.as_bytes()[..4], b"VGDO");
        assert_eq!(
            (custom.scanout, custom.width, custom.height),
            (1, 1366, 700)
        );
    }
}
