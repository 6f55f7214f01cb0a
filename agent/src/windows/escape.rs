//! `D3DKMTEscape` to the viogpudo adapter: the [`EscapeTransport`] of the Windows build.
//!
//! The adapter is found by asking: every adapter `D3DKMTEnumAdapters2` lists gets the
//! protocol's query, and the first whose driver answers it correctly is viogpudo (other
//! drivers reject a private escape they do not know). Its LUID names it in the display
//! configuration.

use windows_sys::Wdk::Graphics::Direct3D::{
    D3DKMTCloseAdapter, D3DKMTEnumAdapters2, D3DKMTEscape, D3DKMT_ADAPTERINFO, D3DKMT_CLOSEADAPTER,
    D3DKMT_ENUMADAPTERS2, D3DKMT_ESCAPE, D3DKMT_ESCAPE_DRIVERPRIVATE,
};
use windows_sys::Win32::Foundation::LUID;

use crate::driver::{Driver, EscapeDriver, EscapeTransport};
use crate::error::{Error, NtStatus, Result};

/// One opened adapter.
pub struct D3dkmtEscape {
    adapter: u32,
    luid: LUID,
}

impl D3dkmtEscape {
    /// The viogpudo adapter, opened.
    pub fn open() -> Result<Self> {
        let mut adapters: Vec<D3DKMT_ADAPTERINFO> = Vec::new();
        let mut enumerate = D3DKMT_ENUMADAPTERS2::default();
        // SAFETY: a null `pAdapters` asks for the count only.
        let status = unsafe { D3DKMTEnumAdapters2(&mut enumerate) };
        if status < 0 {
            return Err(Error::Escape(status));
        }
        adapters.resize(
            enumerate.NumAdapters as usize,
            D3DKMT_ADAPTERINFO::default(),
        );
        enumerate.pAdapters = adapters.as_mut_ptr();
        // SAFETY: `pAdapters` has room for `NumAdapters` entries.
        let status = unsafe { D3DKMTEnumAdapters2(&mut enumerate) };
        if status < 0 {
            return Err(Error::Escape(status));
        }
        adapters.truncate(enumerate.NumAdapters as usize);
        let mut found = None;
        for info in adapters {
            let candidate = Self {
                adapter: info.hAdapter,
                luid: info.AdapterLuid,
            };
            if found.is_none() {
                let mut driver = EscapeDriver::new(candidate);
                if driver.displays().is_ok() {
                    found = Some(driver);
                }
                // A refused candidate is closed when `driver` drops.
            }
        }
        found
            .map(EscapeDriver::into_transport)
            .ok_or(Error::NoAdapter)
    }

    /// The adapter's LUID.
    pub fn luid(&self) -> LUID {
        self.luid
    }
}

impl EscapeTransport for D3dkmtEscape {
    fn escape(&mut self, buf: &mut [u8]) -> Result<NtStatus> {
        let size = u32::try_from(buf.len()).map_err(|_| Error::BadReply)?;
        let escape = D3DKMT_ESCAPE {
            hAdapter: self.adapter,
            Type: D3DKMT_ESCAPE_DRIVERPRIVATE,
            pPrivateDriverData: buf.as_mut_ptr().cast(),
            PrivateDriverDataSize: size,
            ..D3DKMT_ESCAPE::default()
        };
        // SAFETY: the private data is `buf`, `size` bytes, writable for the call (dxgkrnl
        // copies it in and the driver's reply back out).
        Ok(unsafe { D3DKMTEscape(&escape) })
    }
}

impl Drop for D3dkmtEscape {
    fn drop(&mut self) {
        let close = D3DKMT_CLOSEADAPTER {
            hAdapter: self.adapter,
        };
        // SAFETY: the handle came from D3DKMTEnumAdapters2 and is closed once, here.
        unsafe { D3DKMTCloseAdapter(&close) };
    }
}
