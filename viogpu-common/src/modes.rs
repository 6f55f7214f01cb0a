//! (to be written)

/// Largest width or height, in pixels, that any layer of the driver accepts from the device,
/// the OS or an EDID. 16384 is the largest texture side D3D11+ hardware must support and
/// twice 8K, so no real display exceeds it; beyond it, sizes are garbage.
pub const MAX_DIMENSION: u32 = 16384;
