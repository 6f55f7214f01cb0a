//! The service: registered with the service control manager, it keeps one helper in the
//! console session ([`crate::supervisor`] decides) until it is stopped.
//!
//! The control handler only signals events (stop; a session change wakes the loop); the
//! loop waits on them, on the helper's process handle (it exited) and on the supervisor's
//! next restart time, and re-reads the console session every few seconds as a fallback.

use std::sync::atomic::{AtomicPtr, Ordering};

use windows_sys::Win32::Foundation::{
    ERROR_CALL_NOT_IMPLEMENTED, HANDLE, NO_ERROR, WAIT_FAILED, WAIT_OBJECT_0,
};
use windows_sys::Win32::System::Services::{
    RegisterServiceCtrlHandlerExW, SetServiceStatus, StartServiceCtrlDispatcherW,
    SERVICE_ACCEPT_SESSIONCHANGE, SERVICE_ACCEPT_SHUTDOWN, SERVICE_ACCEPT_STOP,
    SERVICE_CONTROL_INTERROGATE, SERVICE_CONTROL_SESSIONCHANGE, SERVICE_CONTROL_SHUTDOWN,
    SERVICE_CONTROL_STOP, SERVICE_RUNNING, SERVICE_START_PENDING, SERVICE_STATUS,
    SERVICE_STATUS_HANDLE, SERVICE_STOPPED, SERVICE_TABLE_ENTRYW, SERVICE_WIN32_OWN_PROCESS,
};
use windows_sys::Win32::System::Threading::{CreateEventW, SetEvent, WaitForMultipleObjects};

use super::session::{console_user_session, Handle, Helper};
use super::{log, now_ms, wide, SERVICE_NAME};
use crate::supervisor::{Command, Supervisor};

/// How often the console session is read again when nothing signalled a change.
const SESSION_POLL_MS: u64 = 5_000;

/// The events the control handler signals (set once, before the handler is registered).
static STOP_EVENT: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(core::ptr::null_mut());
static WAKE_EVENT: AtomicPtr<core::ffi::c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Runs the service dispatcher (returns when the service stopped).
pub fn run() -> i32 {
    let mut name = wide(SERVICE_NAME);
    let table = [
        SERVICE_TABLE_ENTRYW {
            lpServiceName: name.as_mut_ptr(),
            lpServiceProc: Some(service_main),
        },
        SERVICE_TABLE_ENTRYW {
            lpServiceName: core::ptr::null_mut(),
            lpServiceProc: None,
        },
    ];
    // SAFETY: a table ending with a null entry; `name` outlives the dispatcher.
    let ok = unsafe { StartServiceCtrlDispatcherW(table.as_ptr()) };
    if ok == 0 {
        eprintln!(
            "viogpu-agent: not started by the service control manager ({}); \
             use --once to run one round in this session",
            std::io::Error::last_os_error()
        );
        return 1;
    }
    0
}

/// Reports the service's state.
fn report(handle: SERVICE_STATUS_HANDLE, state: u32) {
    let status = SERVICE_STATUS {
        dwServiceType: SERVICE_WIN32_OWN_PROCESS,
        dwCurrentState: state,
        dwControlsAccepted: if state == SERVICE_RUNNING {
            SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_SESSIONCHANGE
        } else {
            0
        },
        dwWin32ExitCode: NO_ERROR,
        dwServiceSpecificExitCode: 0,
        dwCheckPoint: 0,
        dwWaitHint: if state == SERVICE_START_PENDING {
            3000
        } else {
            0
        },
    };
    // SAFETY: the handle RegisterServiceCtrlHandlerExW returned; `status` is complete.
    unsafe { SetServiceStatus(handle, &status) };
}

unsafe extern "system" fn control_handler(
    control: u32,
    _event_type: u32,
    _event_data: *mut core::ffi::c_void,
    _context: *mut core::ffi::c_void,
) -> u32 {
    let event = match control {
        SERVICE_CONTROL_STOP | SERVICE_CONTROL_SHUTDOWN => STOP_EVENT.load(Ordering::Acquire),
        SERVICE_CONTROL_SESSIONCHANGE => WAKE_EVENT.load(Ordering::Acquire),
        SERVICE_CONTROL_INTERROGATE => return NO_ERROR,
        _ => return ERROR_CALL_NOT_IMPLEMENTED,
    };
    if !event.is_null() {
        // SAFETY: an event created in service_main, never closed while the handler runs.
        unsafe { SetEvent(event) };
    }
    NO_ERROR
}

fn new_event() -> Handle {
    // SAFETY: an unnamed auto-reset event, default security.
    Handle(unsafe { CreateEventW(core::ptr::null(), 0, 0, core::ptr::null()) })
}

unsafe extern "system" fn service_main(_argc: u32, _argv: *mut windows_sys::core::PWSTR) {
    let stop = new_event();
    let wake = new_event();
    STOP_EVENT.store(stop.0, Ordering::Release);
    WAKE_EVENT.store(wake.0, Ordering::Release);
    let name = wide(SERVICE_NAME);
    // SAFETY: the name is NUL-terminated; the handler is a function with the documented
    // signature and no context.
    let status = unsafe {
        RegisterServiceCtrlHandlerExW(name.as_ptr(), Some(control_handler), core::ptr::null())
    };
    if status.is_null() {
        log("cannot register the service control handler");
        return;
    }
    report(status, SERVICE_RUNNING);
    log("service running");
    supervise(&stop, &wake);
    report(status, SERVICE_STOPPED);
}

/// The service's loop, until `stop` is signalled.
fn supervise(stop: &Handle, wake: &Handle) {
    let mut supervisor = Supervisor::new();
    let mut helper: Option<Helper> = None;
    let mut last_session = None;
    loop {
        let now = now_ms();
        let session = console_user_session();
        if session != last_session {
            log(&format!("console session with a user: {session:?}"));
            last_session = session;
        }
        let commands = supervisor.console_changed(session, now);
        for command in commands {
            match command {
                Command::Stop => {
                    if let Some(h) = helper.take() {
                        h.stop();
                    }
                }
                Command::Start(session) => match Helper::start(session) {
                    Ok(h) => {
                        log(&format!("helper started in session {session}"));
                        helper = Some(h);
                        supervisor.helper_started(session, now);
                    }
                    Err(e) => {
                        log(&format!(
                            "cannot start the helper in session {session}: {e}"
                        ));
                        supervisor.helper_exited(now);
                    }
                },
            }
        }
        let timeout = supervisor
            .next_deadline_ms()
            .map_or(SESSION_POLL_MS, |at| at.saturating_sub(now))
            .min(SESSION_POLL_MS);
        let mut handles: Vec<HANDLE> = vec![stop.0, wake.0];
        if let Some(h) = &helper {
            handles.push(h.process.0);
        }
        // SAFETY: two or three live handles; wait for any of them.
        let signalled = unsafe {
            WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, timeout as u32)
        };
        if signalled == WAIT_OBJECT_0 {
            if let Some(h) = helper.take() {
                h.stop();
            }
            log("service stopping");
            return;
        }
        if signalled == WAIT_FAILED {
            // Not expected with live handles; never spin on it.
            log(&format!(
                "waiting failed: {}",
                std::io::Error::last_os_error()
            ));
            std::thread::sleep(std::time::Duration::from_millis(SESSION_POLL_MS));
            continue;
        }
        if signalled == WAIT_OBJECT_0 + 2 {
            log("helper exited");
            helper = None;
            supervisor.helper_exited(now_ms());
        }
    }
}
