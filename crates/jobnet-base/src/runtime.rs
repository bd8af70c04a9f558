//! The process's one tokio runtime. SSH sessions, the jobnetd server and its client all run their
//! futures on it: a process never builds a runtime per call, and the synchronous executor threads
//! wait on it with `Handle::block_on` from outside it (never from inside async code).

use std::sync::OnceLock;

static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();

/// The runtime's handle, built on first use (two worker threads: the work is waiting on
/// devices, not computing).
pub fn handle() -> std::io::Result<tokio::runtime::Handle> {
    let built = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jobnet-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    });
    match built {
        Ok(rt) => Ok(rt.handle().clone()),
        Err(e) => Err(std::io::Error::other(format!(
            "cannot start the I/O runtime: {e}"
        ))),
    }
}
