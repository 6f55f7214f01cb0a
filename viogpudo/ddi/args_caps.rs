//! `DXGK_DRIVERCAPS`, the capability block a driver returns for `DXGKQAITYPE_DRIVERCAPS`, at
//! its WIN8 size (544 bytes), with its capability words as storage integers with accessors.
//! A display-only driver sets the pointer limits and caps, `SupportNonVGA`,
//! `SupportSmoothRotation` and `WDDMVersion`, and leaves the rest zero.

use super::args::{DXGK_POINTERFLAGS, DXGK_WDDMVERSION};
use super::types::*;

ddi_types! {
    const CAPS_TYPES;

    /// The driver's capabilities (WIN8 layout).
    pub struct DXGK_DRIVERCAPS {
        pub HighestAcceptableAddress: PHYSICAL_ADDRESS,
        pub MaxAllocationListSlotId: u32,
        pub ApertureSegmentCommitLimit: usize,
        pub MaxPointerWidth: u32,
        pub MaxPointerHeight: u32,
        pub PointerCaps: DXGK_POINTERFLAGS,
        pub InterruptMessageNumber: u32,
        pub NumberOfSwizzlingRanges: u32,
        pub MaxOverlays: u32,
        pub GammaRampCaps: DXGK_GAMMARAMPCAPS,
        pub PresentationCaps: DXGK_PRESENTATIONCAPS,
        pub MaxQueuedFlipOnVSync: u32,
        pub FlipCaps: DXGK_FLIPCAPS,
        pub SchedulingCaps: DXGK_VIDSCHCAPS,
        pub MemoryManagementCaps: DXGK_VIDMMCAPS,
        pub GpuEngineTopology: DXGK_GPUENGINETOPOLOGY,
        pub WDDMVersion: DXGK_WDDMVERSION,
        /// `DXGK_VIRTUALADDRESSCAPS_DEPRECATED`: unused, must stay zero.
        pub Reserved: [u32; 7],
        /// `DXGK_DMABUFFERCAPS_DEPRECATED`: unused, must stay zero.
        pub Reserved1: [u32; 40],
        pub PreemptionCaps: D3DKMDT_PREEMPTION_CAPS,
        /// The driver does not need the VGA ranges (required true for display-only drivers
        /// that are not VGA compatible).
        pub SupportNonVGA: BOOLEAN,
        pub SupportSmoothRotation: BOOLEAN,
        pub SupportPerEngineTDR: BOOLEAN,
        pub SupportDirectFlip: BOOLEAN,
        pub SupportMultiPlaneOverlay: BOOLEAN,
        pub SupportRuntimePowerManagement: BOOLEAN,
        pub SupportSurpriseRemovalInHibernation: BOOLEAN,
    }
    nested {
        "PointerCaps.Value" => PointerCaps.Value,
        "GammaRampCaps.Value" => GammaRampCaps.Value,
        "PresentationCaps.Value" => PresentationCaps.Value,
        "FlipCaps.Value" => FlipCaps.Value,
        "SchedulingCaps.Value" => SchedulingCaps.Value,
        "MemoryManagementCaps.Value" => MemoryManagementCaps.Value,
        "MemoryManagementCaps.PagingNode" => MemoryManagementCaps.PagingNode,
        "GpuEngineTopology.Reserved" => GpuEngineTopology.Reserved,
        "Reserved.Value" => Reserved,
        "Reserved1.PresentDmaBuffer" => Reserved1,
        "PreemptionCaps.ComputePreemptionGranularity" => PreemptionCaps.ComputePreemptionGranularity,
    }

    /// Gamma-ramp capabilities.
    pub struct DXGK_GAMMARAMPCAPS in "DXGK_DRIVERCAPS" at "GammaRampCaps" {
        pub Value: u32,
    }
    bits {
        "Gamma_Rgb256x3x16" => gamma_rgb256x3x16, set_gamma_rgb256x3x16: bool = 0x1 in Value,
    }

    /// Presentation capabilities.
    pub struct DXGK_PRESENTATIONCAPS in "DXGK_DRIVERCAPS" at "PresentationCaps" {
        pub Value: u32,
    }
    bits {
        "NoScreenToScreenBlt" => no_screen_to_screen_blt, set_no_screen_to_screen_blt: bool = 0x1 in Value,
        "NoOverlapScreenBlt" => no_overlap_screen_blt, set_no_overlap_screen_blt: bool = 0x2 in Value,
        "SupportKernelModeCommandBuffer" => support_kernel_mode_command_buffer, set_support_kernel_mode_command_buffer: bool = 0x4 in Value,
        "DriverSupportsCddDwmInterop" => driver_supports_cdd_dwm_interop, set_driver_supports_cdd_dwm_interop: bool = 0x100 in Value,
        "AlignmentShift" => alignment_shift, set_alignment_shift: u32 = 0x3C00 in Value,
        "MaxTextureWidthShift" => max_texture_width_shift, set_max_texture_width_shift: u32 = 0x1C000 in Value,
        "MaxTextureHeightShift" => max_texture_height_shift, set_max_texture_height_shift: u32 = 0xE0000 in Value,
        "SupportAllBltRops" => support_all_blt_rops, set_support_all_blt_rops: bool = 0x0010_0000 in Value,
        "SupportSoftwareDeviceBitmaps" => support_software_device_bitmaps, set_support_software_device_bitmaps: bool = 0x1000_0000 in Value,
        "SupportLinearHeap" => support_linear_heap, set_support_linear_heap: bool = 0x4000_0000 in Value,
    }

    /// Flip capabilities (WIN8 bits).
    pub struct DXGK_FLIPCAPS in "DXGK_DRIVERCAPS" at "FlipCaps" {
        pub Value: u32,
    }
    bits {
        "FlipOnVSyncWithNoWait" => flip_on_vsync_with_no_wait, set_flip_on_vsync_with_no_wait: bool = 0x1 in Value,
        "FlipOnVSyncMmIo" => flip_on_vsync_mmio, set_flip_on_vsync_mmio: bool = 0x2 in Value,
        "FlipInterval" => flip_interval, set_flip_interval: bool = 0x4 in Value,
        "FlipImmediateMmIo" => flip_immediate_mmio, set_flip_immediate_mmio: bool = 0x8 in Value,
    }

    /// Scheduler capabilities (WIN8 bits).
    pub struct DXGK_VIDSCHCAPS in "DXGK_DRIVERCAPS" at "SchedulingCaps" {
        pub Value: u32,
    }
    bits {
        "MultiEngineAware" => multi_engine_aware, set_multi_engine_aware: bool = 0x1 in Value,
        "VSyncPowerSaveAware" => vsync_power_save_aware, set_vsync_power_save_aware: bool = 0x2 in Value,
        "PreemptionAware" => preemption_aware, set_preemption_aware: bool = 0x4 in Value,
        "NoDmaPatching" => no_dma_patching, set_no_dma_patching: bool = 0x8 in Value,
        "CancelCommandAware" => cancel_command_aware, set_cancel_command_aware: bool = 0x10 in Value,
    }

    /// Memory-manager capabilities (WIN8 bits) and the paging node.
    pub struct DXGK_VIDMMCAPS in "DXGK_DRIVERCAPS" at "MemoryManagementCaps" {
        pub Value: u32,
        pub PagingNode: u32,
    }
    bits {
        "OutOfOrderLock" => out_of_order_lock, set_out_of_order_lock: bool = 0x1 in Value,
        "DedicatedPagingEngine" => dedicated_paging_engine, set_dedicated_paging_engine: bool = 0x2 in Value,
        "PagingEngineCanSwizzle" => paging_engine_can_swizzle, set_paging_engine_can_swizzle: bool = 0x4 in Value,
        "SectionBackedPrimary" => section_backed_primary, set_section_backed_primary: bool = 0x8 in Value,
    }

    /// GPU engine topology (display-only drivers leave it zero).
    pub struct DXGK_GPUENGINETOPOLOGY in "DXGK_DRIVERCAPS" at "GpuEngineTopology" {
        pub NbAsymetricProcessingNodes: u32,
        pub Reserved: [u32; 64],
    }

    /// Preemption granularities (C enums `D3DKMDT_GRAPHICS_PREEMPTION_GRANULARITY` and
    /// `D3DKMDT_COMPUTE_PREEMPTION_GRANULARITY`, kept as raw `i32`).
    pub struct D3DKMDT_PREEMPTION_CAPS in "DXGK_DRIVERCAPS" at "PreemptionCaps" {
        pub GraphicsPreemptionGranularity: i32,
        pub ComputePreemptionGranularity: i32,
    }
}
