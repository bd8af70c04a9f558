//! Users from the password database (NSS: files, LDAP, ...): a user's uid and primary group, for
//! files that must belong to the service user or to a job's user.

/// (uid, gid) of the user named `name`.
pub fn by_name(name: &str) -> Option<(u32, u32)> {
    let c = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: getpwnam_r writes into `pwd` and `buf` (whose length it is given) and sets `result`
    // to `pwd` or null; nothing is kept beyond this call.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwnam_r(
            c.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid))
    }
}

/// The primary group of user `uid`.
pub fn primary_group(uid: u32) -> Option<u32> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: getpwuid_r writes into `pwd` and `buf` (whose length it is given) and sets
    // `result` to `pwd` or null; nothing is kept beyond this call.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null()).then_some(pwd.pw_gid)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn root_is_in_every_password_database() {
        assert_eq!(super::by_name("root"), Some((0, 0)));
        assert_eq!(super::primary_group(0), Some(0));
        assert_eq!(super::by_name("no-such-user-jobnet"), None);
    }
}
