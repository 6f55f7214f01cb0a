//! The agent's error type: what went wrong talking to the driver or to the display
//! configuration, sorted by what the agent does about it.

use core::fmt;

/// An NTSTATUS (as the driver and `D3DKMTEscape` return it).
pub type NtStatus = i32;

/// Why an operation of the agent failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The driver answered the request with an error status: it refuses this request (for
    /// example a size outside its limits, or a caller without the privilege). Retrying the
    /// same request cannot help.
    DriverRefused(NtStatus),
    /// The escape itself failed (`D3DKMTEscape`'s status): no viogpudo adapter, or it went
    /// away. Worth trying again later.
    Escape(NtStatus),
    /// The driver's reply does not follow the protocol (wrong magic, size or count).
    BadReply,
    /// No adapter driven by viogpudo was found.
    NoAdapter,
    /// There is no interactive desktop to change (no logged-on user, a locked or switched
    /// session): try again when there is one.
    NoSession,
    /// The display configuration does not list the mode yet (Windows has not re-read the
    /// monitor since the driver re-plugged it): try again shortly.
    ModeNotListed,
    /// The display configuration refused the mode (its status code).
    ModeRefused(i32),
    /// An operating-system call failed (its error code).
    Os(u32),
}

impl Error {
    /// Whether retrying the same request later can succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Error::Escape(_) | Error::NoAdapter | Error::NoSession | Error::ModeNotListed
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::DriverRefused(s) => write!(f, "the driver refused the request ({s:#010x})"),
            Error::Escape(s) => write!(f, "the escape to the driver failed ({s:#010x})"),
            Error::BadReply => f.write_str("the driver's reply breaks the escape protocol"),
            Error::NoAdapter => f.write_str("no viogpudo display adapter"),
            Error::NoSession => f.write_str("no interactive desktop (no logged-on user)"),
            Error::ModeNotListed => f.write_str("the display does not list the mode yet"),
            Error::ModeRefused(c) => write!(f, "the display configuration refused the mode ({c})"),
            Error::Os(c) => write!(f, "system call failed (error {c})"),
        }
    }
}

impl std::error::Error for Error {}

/// The agent's result type.
pub type Result<T> = core::result::Result<T, Error>;
