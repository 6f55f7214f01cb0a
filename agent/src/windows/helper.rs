//! The helper in the user's session: the follower's loop.
//!
//! It wakes on a monitor arrival (the driver's re-plug after a host display change, through
//! `RegisterDeviceNotificationW` for the monitor device interface), on `WM_DISPLAYCHANGE`,
//! on the follower's own deadlines (debounce, retry) and otherwise every
//! [`Settings::poll_ms`](crate::settings::Settings::poll_ms) (one cheap escape: the driver
//! answers from what it knows). The settings are re-read on every round.

use windows_sys::Win32::Devices::Display::GUID_DEVINTERFACE_MONITOR;
use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DispatchMessageW, MsgWaitForMultipleObjects, PeekMessageW,
    RegisterClassW, RegisterDeviceNotificationW, TranslateMessage, DBT_DEVTYP_DEVICEINTERFACE,
    DEVICE_NOTIFY_WINDOW_HANDLE, DEV_BROADCAST_DEVICEINTERFACE_W, MSG, PM_REMOVE, QS_ALLINPUT,
    WNDCLASSW, WS_OVERLAPPED,
};

use super::display::GdiDisplays;
use super::escape::D3dkmtEscape;
use super::{log, now_ms, registry, wide};
use crate::driver::EscapeDriver;
use crate::follow::{Action, Follower, Report};

/// The follower's two seams, over the open adapter.
struct Connection {
    driver: EscapeDriver<D3dkmtEscape>,
    displays: GdiDisplays,
}

impl Connection {
    fn open() -> crate::Result<Self> {
        let transport = D3dkmtEscape::open()?;
        let displays = GdiDisplays::new(transport.luid());
        Ok(Self {
            driver: EscapeDriver::new(transport),
            displays,
        })
    }
}

/// One round in this session, its report on stderr (`--once`).
pub fn once() -> i32 {
    let settings = registry::settings();
    let mut connection = match Connection::open() {
        Ok(c) => c,
        Err(e) => {
            log(&format!("{e}"));
            return 1;
        }
    };
    // Debounce already satisfied: a round right now acts on the host size.
    let settings = crate::settings::Settings {
        debounce_ms: 0,
        ..settings
    };
    let mut follower = Follower::new();
    match follower.tick(
        now_ms(),
        &settings,
        &mut connection.driver,
        &mut connection.displays,
    ) {
        Ok(report) => {
            log(&format!("settings {settings:?}"));
            log(&format!("{report:?}"));
            0
        }
        Err(e) => {
            log(&format!("{e}"));
            1
        }
    }
}

unsafe extern "system" fn window_proc(
    window: HWND,
    message: u32,
    wparam: WPARAM,
    lparam: LPARAM,
) -> LRESULT {
    // Every message only wakes the loop; the default handling is enough.
    // SAFETY: the arguments the system passed to this window procedure.
    unsafe { DefWindowProcW(window, message, wparam, lparam) }
}

/// A hidden top-level window (message-only windows get no broadcasts such as
/// WM_DISPLAYCHANGE) registered for monitor arrivals. `None` if it cannot be made: the poll
/// still works.
fn notification_window() -> Option<HWND> {
    let class = wide("VioGpuAgentNotify");
    // SAFETY: null: this executable's module.
    let instance = unsafe { GetModuleHandleW(core::ptr::null()) };
    let wc = WNDCLASSW {
        lpfnWndProc: Some(window_proc),
        hInstance: instance,
        lpszClassName: class.as_ptr(),
        ..WNDCLASSW::default()
    };
    // SAFETY: a complete class whose name outlives the registration's use below.
    if unsafe { RegisterClassW(&wc) } == 0 {
        return None;
    }
    // SAFETY: the class registered above; never shown (no WS_VISIBLE).
    let window = unsafe {
        CreateWindowExW(
            0,
            class.as_ptr(),
            class.as_ptr(),
            WS_OVERLAPPED,
            0,
            0,
            0,
            0,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            instance,
            core::ptr::null(),
        )
    };
    if window.is_null() {
        return None;
    }
    let filter = DEV_BROADCAST_DEVICEINTERFACE_W {
        dbcc_size: core::mem::size_of::<DEV_BROADCAST_DEVICEINTERFACE_W>() as u32,
        dbcc_devicetype: DBT_DEVTYP_DEVICEINTERFACE,
        dbcc_classguid: GUID_DEVINTERFACE_MONITOR,
        ..DEV_BROADCAST_DEVICEINTERFACE_W::default()
    };
    // SAFETY: a window of this thread and a complete filter; the registration lives as long
    // as the process.
    let registration = unsafe {
        RegisterDeviceNotificationW(
            window,
            (&raw const filter).cast(),
            DEVICE_NOTIFY_WINDOW_HANDLE,
        )
    };
    if registration.is_null() {
        log("no monitor notifications: polling only");
    }
    Some(window)
}

/// Waits up to `timeout_ms` for a message, then handles every queued one.
fn wait(timeout_ms: u64) {
    // SAFETY: no handles; wake on any input for this thread's windows.
    unsafe {
        MsgWaitForMultipleObjects(
            0,
            core::ptr::null(),
            0,
            timeout_ms.min(60_000) as u32,
            QS_ALLINPUT,
        )
    };
    let mut message = MSG::default();
    // SAFETY: `message` is writable; any window of this thread.
    while unsafe { PeekMessageW(&mut message, core::ptr::null_mut(), 0, 0, PM_REMOVE) } != 0 {
        // SAFETY: a message PeekMessageW just returned.
        unsafe { TranslateMessage(&message) };
        // SAFETY: as above.
        unsafe { DispatchMessageW(&message) };
    }
}

/// Logs what deserves a line: changes made, sizes given up, and waiting only when the
/// reason changes (so a long wait for a user is one line).
fn log_report(report: &Report, last_wait: &mut Option<String>) {
    for action in &report.actions {
        match action {
            Action::Applied { scanout, size } => log(&format!("display {scanout}: set {size}")),
            Action::GaveUp {
                scanout,
                size,
                error,
            } => {
                log(&format!(
                    "display {scanout}: cannot set {size} ({error}); not retried"
                ));
            }
            Action::Waiting {
                scanout,
                size,
                error,
            } => {
                let line = format!("display {scanout}: waiting to set {size} ({error})");
                if last_wait.as_deref() != Some(line.as_str()) {
                    log(&line);
                    *last_wait = Some(line);
                }
            }
            Action::AlreadyShown { .. } => {}
        }
    }
}

/// The helper's loop (`--session`); ends only when the service terminates the process.
pub fn run() -> i32 {
    log("helper running");
    let _window = notification_window();
    let mut follower = Follower::new();
    let mut connection: Option<Connection> = None;
    let mut last_error = None;
    let mut last_wait = None;
    loop {
        let settings = registry::settings();
        let now = now_ms();
        let mut next = now.saturating_add(settings.poll_ms);
        if connection.is_none() && settings.follow {
            match Connection::open() {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    if last_error != Some(e) {
                        log(&format!("{e}"));
                        last_error = Some(e);
                    }
                }
            }
        }
        if let Some(c) = connection.as_mut() {
            match follower.tick(now, &settings, &mut c.driver, &mut c.displays) {
                Ok(report) => {
                    log_report(&report, &mut last_wait);
                    if let Some(at) = report.next_tick_ms {
                        next = next.min(at);
                    }
                }
                Err(e) => {
                    log(&format!("{e}; reopening the adapter"));
                    connection = None;
                }
            }
        }
        wait(next.saturating_sub(now_ms()));
    }
}
