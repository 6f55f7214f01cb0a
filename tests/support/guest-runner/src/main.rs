//! The guest runner: started by the initramfs `/init` of the QEMU end-to-end guest, it brings
//! up the virtio-gpu with the driver core and answers a line protocol on a serial port.
//!
//! Protocol: after start it prints `READY viogpu-guest-runner`; then for each command line
//! the host sends it answers exactly one line, `OK [details]` or `ERR message`. Numbers are
//! decimal; colors `RRGGBB` hex; rects `x0 y0 x1 y1` with `x1`/`y1` exclusive (Windows
//! `RECT`); `S` is a scanout index. `ms=` is the time the command took in the guest, until
//! the device had given back every request.
//!
//! | command                         | answer                                                   |
//! |---------------------------------|----------------------------------------------------------|
//! | `ping`                          | `OK pong`                                                |
//! | `info`                          | `OK pci=.. id=1af4:1050 bar=N features=0x.. negotiated=0x.. scanouts=N msix=N dma_in_use=B faults=N error_responses=N timeouts=N` |
//! | `display-info`                  | `OK ID:WxH:on|off ...` (GET_DISPLAY_INFO, heads with a size) |
//! | `preferred S`                   | `OK WxH`: the mode list's first mode (display info + EDID) |
//! | `mode S W H RRGGBB`             | `OK WxH ms=..`: framebuffer and desktop of that size and color |
//! | `pattern S`                     | `OK WxH transfers=N bytes=B ms=..`: the test pattern on the whole desktop, presented (a head without a mode gets its preferred mode first) |
//! | `present S x0 y0 x1 y1 RRGGBB ...` | `OK rects=N transfers=N bytes=B ms=..`: each rect filled, exactly those presented |
//! | `move S sx sy x0 y0 x1 y1`      | `OK ... ms=..`: pixels at (sx, sy) scrolled to the rect, presented as a move rect |
//! | `rotate S 0|90|180|270`         | `OK WxH ms=..`: framebuffer re-moded to the rotated size, desktop presented under the rotation (counter-clockwise, see `viogpu_common::blit`) |
//! | `cursor S mono|color|masked X Y`| `OK resource=ID hot=X,Y sent=2 in_flight=N faults=N error_responses=N`: UPDATE_CURSOR at (X, Y), MOVE_CURSOR to (X+8, Y+8) |
//! | `bugcheck S`                    | `OK x0 y0 x1 y1`: the bugcheck bitmap written and sent polled |
//! | `power-cycle`                   | `OK restored=N ms=..`: reset (D3), bring-up, modes and pictures restored (D0) |
//! | `stop`                          | `OK resources=N dma=BYTES`: scanouts disabled, resources unreferenced, device reset |
//! | `timings`                       | `OK present_ms=.. mode_ms=..` of the last present and mode change (`-` if none) |
//! | `dma-free`                      | `OK BYTES` free in the DMA range                         |
//!
//! Usage: `viogpu-guest-runner --serial /dev/ttyS1 --dma BASE:SIZE` (hex or decimal).

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
