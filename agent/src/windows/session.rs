//! The console session and the helper process started in it.
//!
//! The helper runs as LocalSystem, like the service (the driver's custom-mode escape needs
//! SeTcbPrivilege), but in the console session on its interactive desktop
//! (`winsta0\default`), where display settings can be changed: the service duplicates its
//! own token, sets the token's session id (which needs SeTcbPrivilege, held by LocalSystem)
//! and starts the same executable with `--session` through `CreateProcessAsUserW`.

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::Security::{
    DuplicateTokenEx, SecurityIdentification, SetTokenInformation, TokenPrimary, TokenSessionId,
    TOKEN_ADJUST_DEFAULT, TOKEN_ADJUST_SESSIONID, TOKEN_ASSIGN_PRIMARY, TOKEN_DUPLICATE,
    TOKEN_QUERY,
};
use windows_sys::Win32::System::LibraryLoader::GetModuleFileNameW;
use windows_sys::Win32::System::RemoteDesktop::{WTSGetActiveConsoleSessionId, WTSQueryUserToken};
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, GetCurrentProcess, OpenProcessToken, TerminateProcess, CREATE_NO_WINDOW,
    PROCESS_INFORMATION, STARTUPINFOW,
};

use super::wide;
use crate::error::{Error, Result};

/// A handle closed on drop.
#[derive(Debug)]
pub struct Handle(pub HANDLE);

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the handle is owned by this value and closed once.
            unsafe { CloseHandle(self.0) };
        }
    }
}

fn last_error() -> Error {
    Error::Os(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as u32)
}

/// The console session when a user is logged on there (`None` at the logon screen, or while
/// no session is attached to the console).
pub fn console_user_session() -> Option<u32> {
    // SAFETY: no arguments.
    let session = unsafe { WTSGetActiveConsoleSessionId() };
    if session == u32::MAX {
        return None;
    }
    let mut token = Handle(core::ptr::null_mut());
    // SAFETY: `token.0` receives a handle owned by `token`. Fails when nobody is logged on.
    let ok = unsafe { WTSQueryUserToken(session, &mut token.0) };
    (ok != 0).then_some(session)
}

/// The running helper.
#[derive(Debug)]
pub struct Helper {
    /// The process (signalled when it exits).
    pub process: Handle,
}

impl Helper {
    /// Starts this executable with `--session` in `session`, as LocalSystem.
    pub fn start(session: u32) -> Result<Self> {
        let mut own = Handle(core::ptr::null_mut());
        // SAFETY: no arguments; the pseudo-handle needs no closing.
        let process = unsafe { GetCurrentProcess() };
        // SAFETY: our process's pseudo-handle; `own.0` receives the token.
        let ok = unsafe { OpenProcessToken(process, TOKEN_DUPLICATE, &mut own.0) };
        if ok == 0 {
            return Err(last_error());
        }
        let mut token = Handle(core::ptr::null_mut());
        let access = TOKEN_ASSIGN_PRIMARY
            | TOKEN_DUPLICATE
            | TOKEN_QUERY
            | TOKEN_ADJUST_DEFAULT
            | TOKEN_ADJUST_SESSIONID;
        // SAFETY: a primary copy of our token, default security; `token.0` receives it.
        let ok = unsafe {
            DuplicateTokenEx(
                own.0,
                access,
                core::ptr::null(),
                SecurityIdentification,
                TokenPrimary,
                &mut token.0,
            )
        };
        if ok == 0 {
            return Err(last_error());
        }
        // SAFETY: TokenSessionId takes a u32, passed by address with its size.
        let ok = unsafe {
            SetTokenInformation(
                token.0,
                TokenSessionId,
                (&raw const session).cast(),
                core::mem::size_of::<u32>() as u32,
            )
        };
        if ok == 0 {
            return Err(last_error());
        }
        let exe = executable_path()?;
        let mut command_line = wide(&format!("\"{}\" --session", String::from_utf16_lossy(&exe)));
        let mut exe = exe;
        exe.push(0);
        let mut desktop = wide("winsta0\\default");
        let startup = STARTUPINFOW {
            cb: core::mem::size_of::<STARTUPINFOW>() as u32,
            lpDesktop: desktop.as_mut_ptr(),
            ..STARTUPINFOW::default()
        };
        let mut info = PROCESS_INFORMATION::default();
        // SAFETY: every string is NUL-terminated and outlives the call (the command line is
        // writable, as the function requires); `info` receives two handles, owned below.
        let ok = unsafe {
            CreateProcessAsUserW(
                token.0,
                exe.as_ptr(),
                command_line.as_mut_ptr(),
                core::ptr::null(),
                core::ptr::null(),
                0,
                CREATE_NO_WINDOW,
                core::ptr::null(),
                core::ptr::null(),
                &startup,
                &mut info,
            )
        };
        if ok == 0 {
            return Err(last_error());
        }
        drop(Handle(info.hThread));
        Ok(Self {
            process: Handle(info.hProcess),
        })
    }

    /// Ends the helper (it holds no state worth a graceful stop).
    pub fn stop(self) {
        // SAFETY: our process handle, with the PROCESS_TERMINATE right CreateProcess gives.
        unsafe { TerminateProcess(self.process.0, 0) };
    }
}

/// This executable's path (UTF-16, no terminator).
fn executable_path() -> Result<Vec<u16>> {
    let mut buf = vec![0u16; 32_768];
    // SAFETY: `buf` has room for the `len` characters stated.
    let len =
        unsafe { GetModuleFileNameW(core::ptr::null_mut(), buf.as_mut_ptr(), buf.len() as u32) };
    if len == 0 || len as usize >= buf.len() {
        return Err(last_error());
    }
    buf.truncate(len as usize);
    Ok(buf)
}
