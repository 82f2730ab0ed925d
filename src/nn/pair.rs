//! Two threads for the halves of every training step, without a wake-up between them.
//!
//! A step of `fit` hands work to a second thread twice (the two halves of the batch, then the
//! two blocks of the first layer's weights), about every 0.3 ms on MNIST. Through
//! `rayon::join` from the caller's thread, each hand-off went through rayon's sleep and wake
//! machinery: the caller's thread blocks on a latch, a worker is woken to run the job, and
//! the caller is woken again when it is done, which measured 30–45 µs a hand-off on this
//! machine's virtual CPUs, about a tenth of the step. Here one of rayon's workers is taken for
//! the length of an epoch and waits for work by spinning (then yielding, then napping if the
//! caller is away for long), and the caller runs the first half itself and spins until the
//! second is done.
//!
//! Nothing is lost when rayon has no worker to spare (the pool busy with other work, or one
//! thread): a job the helper has not picked up is taken back and run by the caller, so a step
//! never waits on a thread that may never come.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

/// No job.
const EMPTY: u8 = 0;
/// A job is posted and nobody runs it yet.
const POSTED: u8 = 1;
/// The helper runs the job.
const TAKEN: u8 = 2;
/// The helper has finished the job.
const DONE: u8 = 3;

/// Busy-wait rounds before a waiting thread starts yielding its CPU (few under Miri, where
/// each round is slow).
const SPIN_ROUNDS: u32 = if cfg!(miri) { 1 << 4 } else { 1 << 14 };
/// Yields after that before it naps.
const YIELD_ROUNDS: u32 = 1 << 10;
/// One nap: a caller away this long (a slow `on_step`, say) finds the helper within it.
const NAP: Duration = Duration::from_micros(200);

/// What the caller's thread and the helper share.
struct Shared {
    state: AtomicU8,
    /// The posted job: written by the caller before `state` becomes `POSTED`, read by whoever
    /// moves it from `POSTED`. Its real lifetime is that of the `join` that posted it, which
    /// does not return before the job has run.
    job: UnsafeCell<Option<*mut (dyn FnMut() + Send + 'static)>>,
    /// The payload of a panic in the helper's job, for the caller to resume.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    stop: AtomicBool,
}

// SAFETY: `job` is only written by the caller while `state` is `EMPTY` (no other thread
// reads it then) and only read by the thread that moved `state` from `POSTED`, with
// release/acquire ordering between the write and the read; the closure it points to is
// `Send`.
unsafe impl Sync for Shared {}

/// A way to run two closures at once for the length of [`with_pair`]'s body.
pub(crate) struct Pair<'a> {
    shared: Option<&'a Shared>,
}

/// Runs `body` with a [`Pair`]: with a helper taken from rayon's pool when rayon has more than
/// one thread (see the module notes), else one that runs both closures on this thread.
pub(crate) fn with_pair<R>(body: impl FnOnce(&Pair) -> R) -> R {
    if crate::kernels::threads() < 2 {
        return body(&Pair { shared: None });
    }
    let shared = Shared {
        state: AtomicU8::new(EMPTY),
        job: UnsafeCell::new(None),
        panic: Mutex::new(None),
        stop: AtomicBool::new(false),
    };
    let r = rayon::in_place_scope(|s| {
        s.spawn(|_| helper(&shared));
        let r = catch_unwind(AssertUnwindSafe(|| {
            body(&Pair {
                shared: Some(&shared),
            })
        }));
        shared.stop.store(true, Ordering::Release);
        r
    });
    r.unwrap_or_else(|p| resume_unwind(p))
}

/// The helper's loop: run each posted job, until told to stop.
fn helper(sh: &Shared) {
    let mut idle = 0;
    loop {
        if sh.state.load(Ordering::Relaxed) == POSTED
            && sh
                .state
                .compare_exchange(POSTED, TAKEN, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // SAFETY: moving `state` from POSTED gives this thread the job (see `Shared`); the
            // poster waits for DONE before the closure's borrows end.
            let job = unsafe { (*sh.job.get()).expect("a posted job") };
            // SAFETY: as above; nobody else calls it.
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() })) {
                *sh.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
            sh.state.store(DONE, Ordering::Release);
            idle = 0;
            continue;
        }
        if sh.stop.load(Ordering::Acquire) {
            return;
        }
        back_off(&mut idle, true);
    }
}

/// One round of waiting: spin, then yield, then (if `nap`) nap. The helper naps when the
/// caller is away for long; the caller never does, as its wait ends when a job does.
fn back_off(idle: &mut u32, nap: bool) {
    *idle = idle.saturating_add(1);
    if *idle < SPIN_ROUNDS {
        std::hint::spin_loop();
    } else if !nap || *idle < SPIN_ROUNDS + YIELD_ROUNDS {
        std::thread::yield_now();
    } else {
        std::thread::sleep(NAP);
    }
}

impl Pair<'_> {
    /// Runs `a` on this thread and `b` on the helper at the same time (or both here, `a`
    /// first, without a helper), and returns both results. A panic in either is resumed here
    /// once both have finished.
    pub(crate) fn join<RA, RB: Send>(
        &self,
        a: impl FnOnce() -> RA,
        b: impl FnOnce() -> RB + Send,
    ) -> (RA, RB) {
        let Some(sh) = self.shared else {
            return (a(), b());
        };
        let mut b = Some(b);
        let mut rb = None;
        let mut call = || rb = Some(b.take().expect("run once")());
        let job: &mut (dyn FnMut() + Send) = &mut call;
        let job: *mut (dyn FnMut() + Send + '_) = job;
        // SAFETY: only the lifetime is erased; this function does not return (nor unwind)
        // before the job has run, here or on the helper, so its borrows outlive every use.
        let job: *mut (dyn FnMut() + Send + 'static) = unsafe { std::mem::transmute(job) };
        // SAFETY: state is EMPTY, so no other thread reads `job` now (see `Shared`).
        unsafe { *sh.job.get() = Some(job) };
        sh.state.store(POSTED, Ordering::Release);
        let ra = catch_unwind(AssertUnwindSafe(a));
        if sh
            .state
            .compare_exchange(POSTED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // The helper never picked it up: run it here.
            // SAFETY: taking it back from POSTED makes this thread its only runner.
            let rb_here = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
            if let Err(p) = rb_here {
                *sh.panic.lock().unwrap_or_else(|e| e.into_inner()) = Some(p);
            }
        } else {
            let mut idle = 0;
            while sh.state.load(Ordering::Acquire) != DONE {
                back_off(&mut idle, false);
            }
            sh.state.store(EMPTY, Ordering::Relaxed);
        }
        let ra = ra.unwrap_or_else(|p| resume_unwind(p));
        if let Some(p) = sh.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            resume_unwind(p);
        }
        (ra, rb.expect("the job ran"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Joins per run (few under Miri).
    const ROUNDS: u64 = if cfg!(miri) { 20 } else { 500 };

    #[test]
    fn joins_return_both_results_on_one_and_two_threads() {
        for threads in [1, 2] {
            let sums = pool(threads).install(|| {
                with_pair(|pair| {
                    let mut v = vec![0u64; 1000];
                    for round in 0..ROUNDS {
                        let (lo, hi) = v.split_at_mut(500);
                        let (a, b) = pair.join(
                            || {
                                lo.iter_mut().for_each(|x| *x += round);
                                lo.iter().sum::<u64>()
                            },
                            || {
                                hi.iter_mut().for_each(|x| *x += 2 * round);
                                hi.iter().sum::<u64>()
                            },
                        );
                        assert_eq!(a * 2, b, "round {round}");
                    }
                    v.iter().sum::<u64>()
                })
            });
            assert_eq!(
                sums,
                500 * (ROUNDS * (ROUNDS - 1) / 2) * 3,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn a_panic_on_either_side_reaches_the_caller_after_both_finish() {
        let p = pool(2);
        let done = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            p.install(|| {
                with_pair(|pair| {
                    pair.join(
                        || panic!("side a"),
                        || {
                            std::thread::sleep(Duration::from_millis(20));
                            done.fetch_add(1, Ordering::SeqCst);
                        },
                    )
                })
            })
        }));
        let msg = r.unwrap_err().downcast::<&str>().unwrap();
        assert_eq!(*msg, "side a");
        assert_eq!(
            done.load(Ordering::SeqCst),
            1,
            "b must finish before the panic"
        );
        let r = catch_unwind(AssertUnwindSafe(|| {
            p.install(|| with_pair(|pair| pair.join(|| 1, || -> u8 { panic!("side b") })))
        }));
        let msg = r.unwrap_err().downcast::<&str>().unwrap();
        assert_eq!(*msg, "side b");
        // The pool is still usable.
        assert_eq!(
            p.install(|| with_pair(|pair| pair.join(|| 1, || 2))),
            (1, 2)
        );
    }

    #[test]
    fn a_job_no_worker_picks_up_runs_on_the_caller() {
        // Both of the pool's threads are busy (one blocked, one running the caller), so the
        // helper never starts: every join must still finish.
        let p = pool(2);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        p.spawn(move || {
            started_tx.send(()).unwrap();
            rx.recv().unwrap();
        });
        started_rx.recv().unwrap();
        let (r, tx) = p.install(move || {
            let r = with_pair(|pair| {
                (0..ROUNDS as i32)
                    .map(|i| {
                        let (a, b) = pair.join(|| i, || i * 10);
                        a + b
                    })
                    .sum::<i32>()
            });
            (r, tx)
        });
        tx.send(()).unwrap();
        let n = ROUNDS as i32;
        assert_eq!(r, 11 * n * (n - 1) / 2);
    }
}
