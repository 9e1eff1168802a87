//! Background threads that run async work (the MQTT publisher, the local HTTP API) on their own
//! single-threaded tokio runtime, so a blocking pipeline thread never shares an executor with them.

use std::future::Future;
use std::thread::JoinHandle;

/// Spawns the thread `name` and runs the future that `work` makes on a current-thread runtime
/// there; `work` is called inside the runtime, so it may create tokio resources. A runtime that
/// cannot start is logged with `what` and the thread ends.
pub(crate) fn spawn<F, Fut>(
    name: &str,
    what: &'static str,
    work: F,
) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the {what} runtime");
                    return;
                }
            };
            rt.block_on(async move { work().await });
        })
}
