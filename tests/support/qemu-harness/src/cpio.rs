//! The "newc" cpio archive format (SVR4 without CRC) that the Linux kernel unpacks as an
//! initramfs: for each entry a 110-byte ASCII header, the NUL-terminated name and the data,
//! each padded to 4 bytes, and a final `TRAILER!!!` entry.

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// An in-memory newc archive being built.
#[derive(Debug, Default)]
pub struct CpioWriter {
    out: Vec<u8>,
    next_inode: u32,
}

impl CpioWriter {
    /// An empty archive.
    pub fn new() -> Self {
        Self {
            out: Vec::new(),
            next_inode: 1,
        }
    }

    /// Adds a directory (parents must be added first).
    pub fn dir(&mut self, path: &str, perm: u32) -> &mut Self {
        self.entry(path, S_IFDIR | perm, 2, (0, 0), &[])
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(path, S_IFREG | perm, 1, (0, 0), data)
    }

    /// Adds a symbolic link `path` -> `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// Adds a character device node.
    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> &mut Self {
        self.entry(path, S_IFCHR | perm, 1, (major, minor), &[])
    }

    /// Appends the trailer and returns the archive bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.next_inode = 0;
        self.entry("TRAILER!!!", 0, 1, (0, 0), &[]);
        self.out
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> &mut Self {
        let inode = self.next_inode;
        self.next_inode += 1;
        let fields = [
            inode,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            data.len() as u32,
            0, // devmajor
            0, // devminor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for field in fields {
            self.out
                .extend_from_slice(format!("{field:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_newc_headers_names_data_and_trailer() {
        let mut w = CpioWriter::new();
        w.file("init", 0o755, b"abc");
        let out = w.finish();
        // Header: magic + 13 fields of 8 hex digits.
        assert_eq!(&out[..6], b"070701");
        assert_eq!(&out[6..14], b"00000001"); // inode
        assert_eq!(&out[14..22], b"000081ed"); // regular file, 0755
        assert_eq!(&out[54..62], b"00000003"); // file size
        assert_eq!(&out[94..102], b"00000005"); // name size incl. NUL
                                                // Name at 110, padded to 116; data then padded to 120.
        assert_eq!(&out[110..115], b"init\0");
        assert_eq!(&out[116..119], b"abc");
        assert_eq!(out[119], 0);
        assert_eq!(&out[120..126], b"070701");
        assert_eq!(&out[120 + 110..120 + 120], b"TRAILER!!!");
        assert_eq!(out.len() % 4, 0);
    }

    #[test]
    fn symlink_data_is_the_target_and_devices_carry_rdev() {
        let mut w = CpioWriter::new();
        w.symlink("bin/sh", "busybox");
        w.char_device("dev/console", 0o600, 5, 1);
        let out = w.finish();
        assert_eq!(&out[14..22], b"0000a1ff");
        assert_eq!(&out[110..117], b"bin/sh\0");
        assert_eq!(&out[120..127], b"busybox");
        let dev = 128;
        assert_eq!(&out[dev + 14..dev + 22], b"00002180");
        assert_eq!(&out[dev + 78..dev + 86], b"00000005"); // rdevmajor
        assert_eq!(&out[dev + 86..dev + 94], b"00000001"); // rdevminor
    }
}
