//! A small fixed pool of threads for sled work, so blocking store calls never run on the async
//! threads and never multiply into dozens of threads fighting over sled's locks on two cores
//! (measured: 64 writers through tokio's blocking pool reach a third of the rate of 4 threads).

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Threads running store jobs.
pub const THREADS: usize = 4;
/// Jobs queued beyond this make callers wait (bounded).
const QUEUE: usize = 4096;

pub struct Pool {
    tx: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(rx));
        let threads = (0..THREADS)
            .map(|i| {
                let rx = rx.clone();
                std::thread::Builder::new()
                    .name(format!("voucherd-store-{i}"))
                    .spawn(move || {
                        loop {
                            let job = match rx.lock() {
                                Ok(guard) => guard.recv(),
                                Err(_) => return,
                            };
                            match job {
                                Ok(job) => job(),
                                Err(_) => return,
                            }
                        }
                    })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            tx: Some(tx),
            threads,
        })
    }

    /// Runs `f` on a store thread and returns its result.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, &'static str> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        let tx = self.tx.as_ref().ok_or("store is closed")?.clone();
        // The queue is bounded: when full, wait for room off the async thread.
        match tx.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || tx.send(job))
                    .await
                    .map_err(|_| "store queue failed")?
                    .map_err(|_| "store is closed")?;
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return Err("store is closed"),
        }
        result.await.map_err(|_| "store job panicked")
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
