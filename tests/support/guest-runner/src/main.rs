//! The guest runner: started by the initramfs `/init` of the QEMU end-to-end guest, it loads
//! the driver through the dxgkrnl simulator onto the real virtio-gpu, boots the adapter as
//! Windows does, and answers a line protocol on a serial port by playing the OS: each command
//! is a sequence of DDI calls (see `session/`).
//!
//! Protocol: after start it prints `READY viogpu-guest-runner`; then for each command line
//! the host sends it answers exactly one line, `OK [details]` or `ERR message`. Numbers are
//! decimal; colors `RRGGBB` hex; rects `x0 y0 x1 y1` with `x1`/`y1` exclusive (Windows
//! `RECT`); `S` is a VidPN source (= target = child = scanout index). `ms=` is the time the
//! command took in the guest, until the device had given back every request. `transfers=`
//! and `bytes=` are the `TRANSFER_TO_HOST_2D` requests the driver queued, read from the ring.
//!
//! | command                         | answer                                                   |
//! |---------------------------------|----------------------------------------------------------|
//! | `ping`                          | `OK pong`                                                |
//! | `info`                          | `OK pci=.. id=1af4:1050 bar=N features=0x.. negotiated=0x.. scanouts=N msix=N dma_in_use=B phase=..`: features as the driver read and wrote them, scanouts = the driver's source count |
//! | `display-info`                  | `OK ID:WxH:on ...`: the connected children and their EDIDs' preferred sizes |
//! | `preferred S`                   | `OK WxH`: the EDID's preferred mode of child S (what boot commits) |
//! | `mode S W H RRGGBB`             | `OK WxH custom=0|1 ms=.. transfers=N bytes=B`: VidPN commit of that desktop size (custom=1: the size was added with the driver's custom-mode escape first), then the desktop filled with the color and presented; `transfers`/`bytes` of the whole mode change (filling the desktop is not timed) |
//! | `pattern S`                     | `OK WxH rects=1 transfers=N bytes=B ms=..`: the test pattern on the whole desktop, presented (a source without a mode gets its preferred mode first) |
//! | `present S x0 y0 x1 y1 RRGGBB ...` | `OK rects=N transfers=N bytes=B ms=..`: each rect filled, exactly those presented as dirty rects |
//! | `move S sx sy x0 y0 x1 y1`      | `OK rects=1 transfers=N bytes=B ms=..`: pixels at (sx, sy) scrolled to the rect, presented as a move rect |
//! | `rotate S 0|90|180|270`         | `OK WxH ms=..`: the desktop committed with that path rotation (counter-clockwise), presented; WxH is the rotated (scan-out) size |
//! | `cursor S mono|color|masked X Y`| `OK hot=X,Y sent=N in_flight=N`: SetPointerShape, SetPointerPosition (X, Y) visible, then (X+8, Y+8); `sent` = cursor-queue requests the driver published |
//! | `bugcheck S`                    | `OK x0 y0 x1 y1`: SystemDisplayEnable + SystemDisplayWrite of the bugcheck bitmap, centered |
//! | `power-cycle`                   | `OK heads=N resets=R ms=..`: SetPowerState D3 then D0; the driver reset the device R times and restores the N committed sources by itself |
//! | `hand-off S`                    | `OK WxH pitch=P target=T bar=B addr=0x.. ms=..`: DxgkDdiStopDeviceAndReleasePostDisplayOwnership of target S, then, as the next owner, the test pattern written into the display it described (BAR B mapped from sysfs, rows P bytes apart); ERR when that display is in no BAR |
//! | `stop`                          | `OK dma=BYTES mappings=N status=S`: StopDevice (not after a bugcheck), RemoveDevice, Unload; what is left |
//! | `follow SECS`                   | `OK S:WxH ... ms=..`: the resolution agent's follower (viogpu-agent) runs until it switched a display to the host's size (a host resize: the device's display event, the driver's re-plug, the custom-mode escape, the VidPN commit), at most SECS seconds; each display it switched, and the time from the command's start |
//! | `timings`                       | `OK present_ms=.. mode_ms=..` of the last present and mode change (`-` if none) |
//! | `dma-free`                      | `OK BYTES` free in the DMA range                         |
//!
//! Usage: `viogpu-guest-runner --serial /dev/ttyS1 --dma BASE:SIZE` (hex or decimal). The
//! driver's trace lines go to stderr (the guest console).

#[cfg(target_os = "linux")]
mod commands;
#[cfg(target_os = "linux")]
mod runner;
#[cfg(target_os = "linux")]
mod session;

#[cfg(target_os = "linux")]
fn main() -> std::process::ExitCode {
    runner::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("viogpu-guest-runner only runs in the Linux QEMU guest");
}
