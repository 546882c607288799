//! LEB128, as the wasm binary format encodes integers, for kiln's small rewrites of core modules.
//!
//! Written here rather than taken from wasm-encoder: the rewrites splice a
//! few bytes into sections they otherwise copy, and need only these two.

/// An unsigned LEB128 encoding of `v`.
pub(crate) fn unsigned(mut v: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A signed LEB128 encoding of `v`.
pub(crate) fn signed(v: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut v = i64::from(v);
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_as_the_spec_examples() {
        assert_eq!(super::unsigned(0), [0]);
        assert_eq!(super::unsigned(624_485), [0xe5, 0x8e, 0x26]);
        assert_eq!(super::unsigned(u32::MAX), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(super::signed(-123_456), [0xc0, 0xbb, 0x78]);
        assert_eq!(super::signed(-1), [0x7f]);
        assert_eq!(super::signed(63), [0x3f]);
        assert_eq!(super::signed(64), [0xc0, 0x00]);
    }
}
