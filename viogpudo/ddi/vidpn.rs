//! The VidPN data the OS and the driver exchange: present paths (source → target with scaling,
//! rotation and gamma), source modes (the desktop surface format), target modes and monitor
//! source modes (the video signal), frequency ranges and detailed timings.
//!
//! C unions are mirrored by their only member a display-only driver uses (documented at each
//! field), so every access stays safe; other members occupy the same bytes.

use core::ffi::c_void;

use super::constants::*;
use super::types::*;

ddi_types! {
    const VIDPN_TYPES;

    /// A width and height in pixels (or lines).
    pub struct D3DKMDT_2DREGION {
        pub cx: u32,
        pub cy: u32,
    }

    /// A frequency as a fraction, in Hz.
    pub struct D3DDDI_RATIONAL {
        pub Numerator: u32,
        pub Denominator: u32,
    }

    /// Dynamic ranges of the colour coefficients of a path or mode.
    pub struct D3DKMDT_COLOR_COEFF_DYNAMIC_RANGES {
        pub FirstChannel: u32,
        pub SecondChannel: u32,
        pub ThirdChannel: u32,
        pub FourthChannel: u32,
    }

    /// The scaling modes a path supports (C bitfield struct).
    pub struct D3DKMDT_VIDPN_PRESENT_PATH_SCALING_SUPPORT {
        pub Bits: u32 => "(bitfield unit)",
    }
    bits {
        "Identity" => identity, set_identity: bool = 0x1 in Bits,
        "Centered" => centered, set_centered: bool = 0x2 in Bits,
        "Stretched" => stretched, set_stretched: bool = 0x4 in Bits,
        "AspectRatioCenteredMax" => aspect_ratio_centered_max, set_aspect_ratio_centered_max: bool = 0x8 in Bits,
        "Custom" => custom, set_custom: bool = 0x10 in Bits,
    }

    /// The rotations a path supports (C bitfield struct; the `Offset*` bits are WDDM 1.3+).
    pub struct D3DKMDT_VIDPN_PRESENT_PATH_ROTATION_SUPPORT {
        pub Bits: u32 => "(bitfield unit)",
    }
    bits {
        "Identity" => identity, set_identity: bool = 0x1 in Bits,
        "Rotate90" => rotate90, set_rotate90: bool = 0x2 in Bits,
        "Rotate180" => rotate180, set_rotate180: bool = 0x4 in Bits,
        "Rotate270" => rotate270, set_rotate270: bool = 0x8 in Bits,
    }

    /// Scaling and rotation of a present path and what the path supports.
    pub struct D3DKMDT_VIDPN_PRESENT_PATH_TRANSFORMATION {
        pub Scaling: D3DKMDT_VIDPN_PRESENT_PATH_SCALING,
        pub ScalingSupport: D3DKMDT_VIDPN_PRESENT_PATH_SCALING_SUPPORT,
        pub Rotation: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION,
        pub RotationSupport: D3DKMDT_VIDPN_PRESENT_PATH_ROTATION_SUPPORT,
    }

    /// The copy-protection schemes a path supports (C bitfield struct).
    pub struct D3DKMDT_VIDPN_PRESENT_PATH_COPYPROTECTION_SUPPORT {
        pub Bits: u32 => "(bitfield unit)",
    }
    bits {
        "NoProtection" => no_protection, set_no_protection: bool = 0x1 in Bits,
        "MacroVisionApsTrigger" => macro_vision_aps_trigger, set_macro_vision_aps_trigger: bool = 0x2 in Bits,
        "MacroVisionFull" => macro_vision_full, set_macro_vision_full: bool = 0x4 in Bits,
    }

    /// Copy protection of a present path.
    pub struct D3DKMDT_VIDPN_PRESENT_PATH_COPYPROTECTION {
        pub CopyProtectionType: D3DKMDT_VIDPN_PRESENT_PATH_COPYPROTECTION_TYPE,
        pub APSTriggerBits: u32,
        pub OEMCopyProtection: [u8; D3DKMDT_MACROVISION_OEMCOPYPROTECTION_SIZE],
        pub CopyProtectionSupport: D3DKMDT_VIDPN_PRESENT_PATH_COPYPROTECTION_SUPPORT,
    }

    /// The gamma ramp of a present path.
    pub struct D3DKMDT_GAMMA_RAMP {
        pub Type: D3DDDI_GAMMARAMP_TYPE,
        /// Size in bytes of the table `Data` points to.
        pub DataSize: usize,
        /// C union of typed table pointers (`pRgb256x3x16`, `pDxgi1`, `pRaw`): all share
        /// these 8 bytes; `Type` says which one it is.
        pub Data: *mut c_void,
    }
    nested {
        "Data.pRaw" => Data,
        "Data.pRgb256x3x16" => Data,
        "Data.pDxgi1" => Data,
    }

    /// One path of a VidPN topology: which source is shown on which target, and how.
    pub struct D3DKMDT_VIDPN_PRESENT_PATH {
        pub VidPnSourceId: D3DDDI_VIDEO_PRESENT_SOURCE_ID,
        pub VidPnTargetId: D3DDDI_VIDEO_PRESENT_TARGET_ID,
        pub ImportanceOrdinal: D3DKMDT_VIDPN_PRESENT_PATH_IMPORTANCE,
        pub ContentTransformation: D3DKMDT_VIDPN_PRESENT_PATH_TRANSFORMATION,
        pub VisibleFromActiveTLOffset: D3DKMDT_2DREGION,
        pub VisibleFromActiveBROffset: D3DKMDT_2DREGION,
        pub VidPnTargetColorBasis: D3DKMDT_COLOR_BASIS,
        pub VidPnTargetColorCoeffDynamicRanges: D3DKMDT_COLOR_COEFF_DYNAMIC_RANGES,
        pub Content: D3DKMDT_VIDPN_PRESENT_PATH_CONTENT,
        pub CopyProtection: D3DKMDT_VIDPN_PRESENT_PATH_COPYPROTECTION,
        pub GammaRamp: D3DKMDT_GAMMA_RAMP,
    }
    nested {
        "ContentTransformation.Scaling" => ContentTransformation.Scaling,
        "ContentTransformation.ScalingSupport" => ContentTransformation.ScalingSupport,
        "ContentTransformation.Rotation" => ContentTransformation.Rotation,
        "ContentTransformation.RotationSupport" => ContentTransformation.RotationSupport,
        "VisibleFromActiveBROffset.cy" => VisibleFromActiveBROffset.cy,
        "CopyProtection.OEMCopyProtection" => CopyProtection.OEMCopyProtection,
        "CopyProtection.CopyProtectionSupport" => CopyProtection.CopyProtectionSupport,
        "GammaRamp.Type" => GammaRamp.Type,
        "GammaRamp.DataSize" => GammaRamp.DataSize,
        "GammaRamp.Data" => GammaRamp.Data,
    }

    /// The format of a graphics (desktop) surface of a VidPN source.
    pub struct D3DKMDT_GRAPHICS_RENDERING_FORMAT {
        pub PrimSurfSize: D3DKMDT_2DREGION,
        pub VisibleRegionSize: D3DKMDT_2DREGION,
        /// Bytes per line.
        pub Stride: u32,
        pub PixelFormat: D3DDDIFORMAT,
        pub ColorBasis: D3DKMDT_COLOR_BASIS,
        pub PixelValueAccessMode: D3DKMDT_PIXEL_VALUE_ACCESS_MODE,
    }
    nested {
        "PrimSurfSize.cx" => PrimSurfSize.cx,
        "PrimSurfSize.cy" => PrimSurfSize.cy,
        "VisibleRegionSize.cx" => VisibleRegionSize.cx,
        "VisibleRegionSize.cy" => VisibleRegionSize.cy,
    }

    /// A mode of a VidPN source.
    pub struct D3DKMDT_VIDPN_SOURCE_MODE {
        pub Id: D3DKMDT_VIDEO_PRESENT_SOURCE_MODE_ID,
        pub Type: D3DKMDT_VIDPN_SOURCE_MODE_TYPE,
        /// C union of `Graphics` and `Text`; display-only drivers only use `Graphics`
        /// (`Type == D3DKMDT_RMT_GRAPHICS`). `Text` would be the first 4 bytes.
        pub Format: D3DKMDT_GRAPHICS_RENDERING_FORMAT,
    }
    nested {
        "Format.Graphics" => Format,
        "Format.Text" => Format,
        "Format.Graphics.PrimSurfSize.cx" => Format.PrimSurfSize.cx,
        "Format.Graphics.PrimSurfSize.cy" => Format.PrimSurfSize.cy,
        "Format.Graphics.VisibleRegionSize.cx" => Format.VisibleRegionSize.cx,
        "Format.Graphics.VisibleRegionSize.cy" => Format.VisibleRegionSize.cy,
        "Format.Graphics.Stride" => Format.Stride,
        "Format.Graphics.PixelFormat" => Format.PixelFormat,
        "Format.Graphics.ColorBasis" => Format.ColorBasis,
        "Format.Graphics.PixelValueAccessMode" => Format.PixelValueAccessMode,
    }

    /// The video signal of a target or monitor mode.
    pub struct D3DKMDT_VIDEO_SIGNAL_INFO {
        pub VideoStandard: D3DKMDT_VIDEO_SIGNAL_STANDARD,
        pub TotalSize: D3DKMDT_2DREGION,
        pub ActiveSize: D3DKMDT_2DREGION,
        pub VSyncFreq: D3DDDI_RATIONAL,
        pub HSyncFreq: D3DDDI_RATIONAL,
        /// Pixels per second.
        pub PixelRate: usize,
        /// C union of `ScanLineOrdering` (the whole enum) and the `AdditionalSignalInfo`
        /// bitfields (scan-line ordering in bits 0-2, v-sync divider in bits 3-8).
        pub AdditionalSignalInfo: u32 => "(anon union)",
    }
    nested {
        "AdditionalSignalInfo" => AdditionalSignalInfo,
        "ScanLineOrdering" => AdditionalSignalInfo,
        "TotalSize.cx" => TotalSize.cx,
        "ActiveSize.cy" => ActiveSize.cy,
        "VSyncFreq.Numerator" => VSyncFreq.Numerator,
        "HSyncFreq.Denominator" => HSyncFreq.Denominator,
    }
    bits {
        "AdditionalSignalInfo.ScanLineOrdering" => scan_line_ordering, set_scan_line_ordering: D3DDDI_VIDEO_SIGNAL_SCANLINE_ORDERING = 0x7 in AdditionalSignalInfo,
        "AdditionalSignalInfo.VSyncFreqDivider" => vsync_freq_divider, set_vsync_freq_divider: u32 = 0x1F8 in AdditionalSignalInfo,
    }

    /// A mode of a VidPN target (WIN8 layout: no `MinimumVSyncFreq`).
    pub struct D3DKMDT_VIDPN_TARGET_MODE {
        pub Id: D3DKMDT_VIDEO_PRESENT_TARGET_MODE_ID,
        pub VideoSignalInfo: D3DKMDT_VIDEO_SIGNAL_INFO,
        /// At WIN8 the whole word is the `D3DKMDT_MODE_PREFERENCE` enum; from WDDM 2.2 on the
        /// preference is its low 2 bits and the rest is the wire format. Use
        /// [`Self::preference`] / [`Self::set_preference`], which touch only bits 0-1 and so
        /// mean the same under both layouts (the OS zeroes new mode infos).
        pub Preference: u32,
    }
    nested {
        "VideoSignalInfo.VideoStandard" => VideoSignalInfo.VideoStandard,
        "VideoSignalInfo.TotalSize.cx" => VideoSignalInfo.TotalSize.cx,
        "VideoSignalInfo.ActiveSize" => VideoSignalInfo.ActiveSize,
        "VideoSignalInfo.ActiveSize.cx" => VideoSignalInfo.ActiveSize.cx,
        "VideoSignalInfo.ActiveSize.cy" => VideoSignalInfo.ActiveSize.cy,
        "VideoSignalInfo.VSyncFreq" => VideoSignalInfo.VSyncFreq,
        "VideoSignalInfo.HSyncFreq" => VideoSignalInfo.HSyncFreq,
        "VideoSignalInfo.PixelRate" => VideoSignalInfo.PixelRate,
        "VideoSignalInfo.ScanLineOrdering" => VideoSignalInfo.AdditionalSignalInfo,
    }
    bits {
        "Preference" => preference, set_preference: D3DKMDT_MODE_PREFERENCE = 0x3 in Preference,
    }

    /// A mode of a monitor source mode set (what the monitor accepts).
    pub struct D3DKMDT_MONITOR_SOURCE_MODE {
        /// `D3DKMDT_MONITOR_SOURCE_MODE_ID`.
        pub Id: u32,
        pub VideoSignalInfo: D3DKMDT_VIDEO_SIGNAL_INFO,
        pub ColorBasis: D3DKMDT_COLOR_BASIS,
        pub ColorCoeffDynamicRanges: D3DKMDT_COLOR_COEFF_DYNAMIC_RANGES,
        pub Origin: D3DKMDT_MONITOR_CAPABILITIES_ORIGIN,
        pub Preference: D3DKMDT_MODE_PREFERENCE,
    }
    nested {
        "VideoSignalInfo.ActiveSize.cx" => VideoSignalInfo.ActiveSize.cx,
        "VideoSignalInfo.VSyncFreq.Numerator" => VideoSignalInfo.VSyncFreq.Numerator,
        "VideoSignalInfo.ScanLineOrdering" => VideoSignalInfo.AdditionalSignalInfo,
    }

    /// Limits of the sync frequencies a monitor accepts.
    pub struct D3DKMDT_FREQUENCY_RANGE {
        pub MinVSyncFreq: D3DDDI_RATIONAL,
        pub MaxVSyncFreq: D3DDDI_RATIONAL,
        pub MinHSyncFreq: D3DDDI_RATIONAL,
        pub MaxHSyncFreq: D3DDDI_RATIONAL,
    }

    /// A frequency range of a monitor and what constrains it.
    pub struct D3DKMDT_MONITOR_FREQUENCY_RANGE {
        pub Origin: D3DKMDT_MONITOR_CAPABILITIES_ORIGIN,
        pub RangeLimits: D3DKMDT_FREQUENCY_RANGE,
        pub ConstraintType: D3DKMDT_MONITOR_FREQUENCY_RANGE_CONSTRAINT,
        /// C union of `ActiveSize` (a `D3DKMDT_2DREGION`) and `MaxPixelRate` (`SIZE_T`),
        /// selected by `ConstraintType`; see [`Self::active_size`].
        pub Constraint: usize,
    }
    nested {
        "Constraint.MaxPixelRate" => Constraint,
        "Constraint.ActiveSize" => Constraint,
        "RangeLimits.MaxHSyncFreq.Denominator" => RangeLimits.MaxHSyncFreq.Denominator,
    }

    /// A timing the driver reports through `pfnGetAdditionalMonitorModeSet`.
    pub struct DXGK_TARGETMODE_DETAIL_TIMING {
        pub VideoStandard: D3DKMDT_VIDEO_SIGNAL_STANDARD,
        pub TimingId: u32,
        pub DetailTiming: DISPLAYID_DETAILED_TIMING_TYPE_I,
    }

    /// A DisplayID type I detailed timing (C bitfields over three storage units).
    pub struct DISPLAYID_DETAILED_TIMING_TYPE_I in "DXGK_TARGETMODE_DETAIL_TIMING" at "DetailTiming" {
        pub ClockAndFlags: u32 => "(anon struct)",
        pub HorizontalActivePixels: u16,
        pub HorizontalBlankPixels: u16,
        pub HorizontalFrontPorchAndPolarity: u16 => "(anon struct)#2",
        pub HorizontalSyncWidth: u16,
        pub VerticalActiveLines: u16,
        pub VerticalBlankLines: u16,
        pub VerticalFrontPorchAndPolarity: u16 => "(anon struct)#3",
        pub VerticalSyncWidth: u16,
    }
    bits {
        "PixelClock" => pixel_clock, set_pixel_clock: u32 = 0x00FF_FFFF in ClockAndFlags,
        "AspectRatio" => aspect_ratio, set_aspect_ratio: u32 = 0x0700_0000 in ClockAndFlags,
        "ScanningType" => scanning_type, set_scanning_type: u32 = 0x1000_0000 in ClockAndFlags,
        "StereoMode" => stereo_mode, set_stereo_mode: u32 = 0x6000_0000 in ClockAndFlags,
        "PreferredTiming" => preferred_timing, set_preferred_timing: bool = 0x8000_0000 in ClockAndFlags,
        "HorizontalFrontPorch" => horizontal_front_porch, set_horizontal_front_porch: u32 = 0x7FFF in HorizontalFrontPorchAndPolarity,
        "HorizontalSyncPolarity" => horizontal_sync_polarity, set_horizontal_sync_polarity: bool = 0x8000 in HorizontalFrontPorchAndPolarity,
        "VerticalFrontPorch" => vertical_front_porch, set_vertical_front_porch: u32 = 0x7FFF in VerticalFrontPorchAndPolarity,
        "VerticalSyncPolarity" => vertical_sync_polarity, set_vertical_sync_polarity: bool = 0x8000 in VerticalFrontPorchAndPolarity,
    }
}

impl D3DDDI_RATIONAL {
    /// `numerator / denominator` Hz.
    pub const fn new(numerator: u32, denominator: u32) -> Self {
        D3DDDI_RATIONAL {
            Numerator: numerator,
            Denominator: denominator,
        }
    }
}

impl D3DKMDT_2DREGION {
    /// A `cx` × `cy` region.
    pub const fn new(cx: u32, cy: u32) -> Self {
        D3DKMDT_2DREGION { cx, cy }
    }
}

impl D3DKMDT_MONITOR_FREQUENCY_RANGE {
    /// `Constraint` read as `ActiveSize` (`cx` in the low, `cy` in the high 4 bytes: x86_64
    /// is little-endian).
    pub const fn active_size(&self) -> D3DKMDT_2DREGION {
        let raw = self.Constraint as u64;
        D3DKMDT_2DREGION {
            cx: raw as u32,
            cy: (raw >> 32) as u32,
        }
    }

    /// Stores `size` as the `ActiveSize` member of `Constraint`.
    pub fn set_active_size(&mut self, size: D3DKMDT_2DREGION) {
        let raw = u64::from(size.cx) | (u64::from(size.cy) << 32);
        // `usize` is 64 bits on the only target of this ABI (x86_64).
        self.Constraint = raw as usize;
    }
}
